"""DAG scale: dry-run the workflow on 1,000 synthetic stimuli; print time and job counts.

Usage: ``.venv/bin/python benchmarks/dag_scale.py [N]`` (default 1000). The
stimuli are one-byte placeholder files (a dry run never reads them); a third each
of video, audio and text. Prints the dry-run wall time, the number of jobs, and
the number of cluster submissions with and without the job groups of
``profiles/slurm`` (grouped CPU stages).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _group_args() -> list[str]:
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    groups = [f"{rule}={group}" for rule, group in profile["groups"].items()]
    comps = [f"{group}={n}" for group, n in profile["group-components"].items()]
    return ["--groups", *groups, "--group-components", *comps]


def dry_run(stimuli: Path, extra: list[str]) -> tuple[float, int, int]:
    """Return (seconds, jobs, submissions) of one dry run."""
    start = time.perf_counter()
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--cores", "1", "--configfile", "config/demo.yaml",
         "--config", f"stimuli={stimuli}", *extra],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    out = proc.stdout
    jobs = int(re.search(r"^total\s+(\d+)", out, re.M).group(1))
    submissions = len(re.findall(r"^(?:\[[^\]]+\] )?Group job ", out, re.M))
    submissions += len(re.findall(r"^(?:local)?rule \w+:", out, re.M))
    return seconds, jobs, submissions


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        stimuli = Path(tmp)
        suffixes = [".mp4", ".wav", ".txt"]
        for i in range(n):
            (stimuli / f"stim{i:05d}{suffixes[i % 3]}").write_bytes(b"x")
        t_plain, jobs, subs_plain = dry_run(stimuli, [])
        t_group, _, subs_group = dry_run(stimuli, _group_args())
    print(f"stimuli: {n}")
    print(f"dry-run DAG, no groups:   {t_plain:.1f} s, {jobs} jobs, {subs_plain} submissions")
    print(f"dry-run DAG, with groups: {t_group:.1f} s, {jobs} jobs, {subs_group} submissions")
    print(f"submission ratio grouped/ungrouped: {subs_group / subs_plain:.3f}")


if __name__ == "__main__":
    main()

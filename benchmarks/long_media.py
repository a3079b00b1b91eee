"""Long media: a synthetic multi-hour audio stimulus through the real workflow, memory per stage.

Usage::

    .venv/bin/python benchmarks/long_media.py --hours 2 --work /tmp/long_media

Makes ``<work>/stimuli/long.wav`` (pink noise, 16 kHz mono, ``--hours`` long) with a
sidecar transcript ``long.words.tsv`` (a word every ``--word-every-s``, default 4 s,
sentences of 12 words),
then, with the demo's tiny models (``demo_models/``, built by ``make demo-models``
or ``--models DIR``):

1. times a dry run of the workflow (DAG and job planning);
2. runs the workflow (``snakemake --cores 2``) from media to products;
3. prints each stage's wall time and peak host RSS (the ``stage resources`` line
   every stage writes to its log, :mod:`tribe_core.logs`) and checks them against
   ``--rss-limit-mb`` (issue target: 4 GB on tiny models).

Every stage streams (features and predictions are written to Zarr block by block,
NIfTI volume by volume), so peak RSS should not grow with the duration: run it
with ``--hours 0.25`` and ``--hours 2`` to see.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tribe_core.features.audio import wav_info  # noqa: E402
from tribe_core.features.video import ffmpeg_binary  # noqa: E402
from tribe_core.logs import read_stage_resources  # noqa: E402

SENTENCE = "the story goes on as people walk through the city and talk about it".split()
WORDS_PER_SENTENCE = 12


def make_long_audio(folder: Path, hours: float, word_every_s: float = 4.0) -> Path:
    """``folder/long.wav`` (pink noise) and its ``long.words.tsv``; returns the WAV.

    A WAV already there with the same length is kept (a rerun reuses its stages).
    """
    folder.mkdir(parents=True, exist_ok=True)
    wav, seconds = folder / "long.wav", hours * 3600
    if not (wav.exists() and wav_info(wav).n_samples == int(seconds * 16000)):
        subprocess.run(
            [ffmpeg_binary(), "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", f"anoisesrc=d={seconds}:c=pink:r=16000:a=0.05:seed=1",
             "-ac", "1", "-c:a", "pcm_s16le", str(wav)],
            check=True,
        )  # fmt: skip
    starts = np.arange(0.2, seconds - 0.5, word_every_s)
    words = [SENTENCE[i % len(SENTENCE)] for i in range(len(starts))]
    lines = ["word\tstart\tduration"]
    for i, (word, start) in enumerate(zip(words, starts, strict=True)):
        end = "." if (i + 1) % WORDS_PER_SENTENCE == 0 else ""
        lines.append(f"{word}{end}\t{start:.3f}\t0.300")
    (folder / "long.words.tsv").write_text("\n".join(lines) + "\n")
    return wav


def _snakemake(args: list[str], config: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--configfile", str(config)],
        cwd=REPO, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - start


def stage_resources(results: Path) -> dict[str, dict]:
    """``{rule: resources}`` of every stage log under ``results`` (per stimulus, merged)."""
    out = {}
    for log in sorted(results.glob("*/logs/*.log")):
        usage = read_stage_resources(log)
        if usage is not None:
            out[log.stem] = usage
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/long_media"))
    parser.add_argument("--models", type=Path, default=REPO / "demo_models")
    parser.add_argument("--rss-limit-mb", type=float, default=4096)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--atlas-dir", default=None, help="HCP-MMP1 folder (default: the caches, else no ROIs)"
    )
    parser.add_argument(
        "--word-every-s", type=float, default=4.0,
        help="one transcript word every this many seconds (0.4 = speech rate; on 2 CPU "
        "cores the text stage then takes over an hour with 1024-word contexts)",
    )  # fmt: skip
    args = parser.parse_args()
    work = args.work.resolve()
    stimuli = work / "stimuli"
    t0 = time.perf_counter()
    wav = make_long_audio(stimuli, args.hours, args.word_every_s)
    make_s = time.perf_counter() - t0
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    models = args.models.resolve()
    demo.update(stimuli=str(stimuli), results_dir=str(work / "results"))
    demo["checkpoint"] = str(models / "tribe")
    demo["transcription"].update(
        model=str(models / "whisper" / "asr"), align_model=str(models / "whisper" / "align")
    )
    if args.atlas_dir:
        demo["products"].update(atlas_dir=str(Path(args.atlas_dir).resolve()))
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(demo, sort_keys=False))

    dry_s = _snakemake(["-n", "--cores", "1"], config)
    run_s = _snakemake(["--cores", str(args.cores)], config)
    stages = stage_resources(work / "results")
    print(f"stimulus: {wav.name}, {args.hours:g} h, {wav.stat().st_size / 2**20:.0f} MB WAV")
    print(f"make media {make_s:.1f} s; dry run {dry_s:.1f} s; workflow run {run_s:.1f} s")
    print(f"{'stage':<26}{'wall s':>10}{'peak RSS MB':>14}")
    for name, usage in stages.items():
        print(f"{name:<26}{usage['wall_s']:>10.1f}{usage['peak_rss_mb']:>14.0f}")
    peak = max(u["peak_rss_mb"] for u in stages.values())
    verdict = "within" if peak < args.rss_limit_mb else "OVER"
    print(f"highest stage peak RSS: {peak:.0f} MB ({verdict} {args.rss_limit_mb:.0f} MB)")
    summary = {
        "hours": args.hours, "make_media_s": make_s, "dry_run_s": dry_s,
        "workflow_s": run_s, "stages": stages, "peak_rss_mb": peak,
    }  # fmt: skip
    (work / "long_media.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

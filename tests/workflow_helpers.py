"""Helpers to run the workflow from a clean copy of the repository in tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.conftest import REPO, synthetic_atlas_dir

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "results", ".snakemake", "demo_models", "demo_stimuli", "__pycache__",
    ".pytest_cache", ".ruff_cache", "benchmarks",
)  # fmt: skip
# Two runs of the workflow are separate processes: CPU float32 kernels (MKL/oneDNN pick
# code paths by buffer alignment) need not round alike there. CI once saw predictions
# from bitwise-equal features differ by 3.3e-6; a half-written or wrong output differs
# by far more (or does not read at all).
CROSS_RUN_ATOL = 1e-5


def arrays_match(a: np.ndarray, b: np.ndarray, atol: float = CROSS_RUN_ATOL) -> bool:
    """Same shape and dtype; floating values within ``atol``, anything else equal."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if np.issubdtype(a.dtype, np.floating):
        return bool(np.allclose(a, b, rtol=0, atol=atol, equal_nan=True))
    return bool(np.array_equal(a, b))


def tables_match(a: Path, b: Path, atol: float = CROSS_RUN_ATOL) -> bool:
    """Two TSV tables: same columns and text cells, numeric columns within ``atol``.

    Cells are read literally (no NA parsing), so words such as ``NA`` or ``null``
    and empty cells stay distinct text.
    """
    ta, tb = (pd.read_csv(path, sep="\t", keep_default_na=False) for path in (a, b))
    if list(ta.columns) != list(tb.columns) or ta.shape != tb.shape:
        return False
    for column in ta.columns:
        x, y = ta[column], tb[column]
        numeric = pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y)
        if not (arrays_match(x.to_numpy(), y.to_numpy(), atol) if numeric else x.equals(y)):
            return False
    return True


def make_workdir(
    dest: Path,
    demo_models: Path,
    stimuli: Path,
    checkpoint: str = "tribe",
    atlas_dir: Path | None = None,
    **overrides,
) -> Path:
    """Copy the repository to ``dest`` with ``stimuli`` and a ``test_config.yaml``.

    The config is ``config/demo.yaml`` with absolute paths to the tiny models
    in ``demo_models`` (``checkpoint`` names the subfolder) and ``atlas_dir``
    (default: the synthetic HCP-style atlas, so no test needs ``../shared``).
    """
    shutil.copytree(REPO, dest, ignore=COPY_IGNORE)
    shutil.copytree(stimuli, dest / "stimuli")
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config.update(
        stimuli="stimuli",
        checkpoint=str(demo_models / checkpoint),
        transcription={
            **config["transcription"],
            "model": str(demo_models / "whisper" / "asr"),
            "align_model": str(demo_models / "whisper" / "align"),
        },
        products={**config["products"], "atlas_dir": str(atlas_dir or synthetic_atlas_dir())},
    )
    config.update(overrides)
    (dest / "test_config.yaml").write_text(yaml.safe_dump(config))
    return dest


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake with the test config in ``workdir``; raise with its output on failure."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    proc = subprocess.run(
        [SNAKEMAKE, "--configfile", "test_config.yaml", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def planned_jobs(workdir: Path, *args: str) -> dict[str, set[str]]:
    """Rule -> stimuli of the jobs a dry run would execute."""
    out = snakemake(workdir, "--dry-run", "--cores", "1", *args).stdout
    jobs: dict[str, set[str]] = {}
    rule = None
    for line in out.splitlines():
        line = line.strip()
        match = re.match(r"^(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
        match = re.search(r"wildcards: stimulus=(.+)$", line)
        if match and rule:
            jobs.setdefault(rule, set()).add(match.group(1))
    return jobs


def rule_blocks(text: str) -> dict[str, dict[str, list[str]]]:
    """Rule name -> directive -> its stripped lines, for the rules of a ``.smk`` text.

    A directive's lines are the rest of its own line (when not empty) and its more
    indented lines; a statement as little indented as the rule, other than a comment,
    ends the rule. A rule made in a loop (``rule:`` with ``name: f"extract_{m}_x"``)
    is named as written there (``extract_{m}_x``).
    """
    rules: dict[str, dict[str, list[str]]] = {}
    rule = directive = None
    indent = ""
    for number, line in enumerate(text.splitlines()):
        head = re.match(r"^( *)(?:local)?rule(?: (\w+))?:", line)
        if head:
            indent, directive = head.group(1), None
            rule = head.group(2) or f"<line {number + 1}>"
            rules[rule] = {}
        elif rule is None:
            continue
        elif key := re.match(rf"^{indent} {{4}}(\w+):(.*)$", line):
            directive = key.group(1)
            rules[rule][directive] = [key.group(2).strip()] if key.group(2).strip() else []
        elif line.strip() and not line.startswith((f"{indent} ", "#", f"{indent}#")):
            rule = directive = None
        elif directive and line.strip():
            rules[rule][directive].append(line.strip())
    return {_written_name(rule, directives): directives for rule, directives in rules.items()}


def _written_name(rule: str, directives: dict[str, list[str]]) -> str:
    """The ``name:`` a rule gives itself (an f-string's text as written), else ``rule``."""
    name = directives.get("name")
    return re.sub(r'^f?"(.*)"$', r"\1", name[0]) if name else rule

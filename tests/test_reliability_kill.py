"""Kill anywhere: kill -9 a running rule at a random point, rerun, get the same outputs.

For each seed, every rule's process is killed once: the workflow is (re)started
with ``--rerun-incomplete`` and the first job of a rule not yet killed gets
SIGKILL at a random moment of its run (or the whole Snakemake process group does,
leaving Snakemake's lock and incomplete markers), until every rule was hit.
After each kill every output that exists under its final name must equal the
uninterrupted run's (no partially written Zarr/NIfTI/TSV/JSON looks complete);
at the end a last
``snakemake --rerun-incomplete`` must finish with outputs equal to the
uninterrupted run's (arrays of every Zarr store, TSVs, JSON, NIfTI data; the
``timing`` attributes are ignored; floating values within ``CROSS_RUN_ATOL``, since
separate processes need not round alike). One short audio and one text stimulus.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Collection
from pathlib import Path

import nibabel as nib
import numpy as np
import psutil
import pytest
import zarr

from tests.workflow_helpers import SNAKEMAKE, arrays_match, make_workdir, snakemake, tables_match

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp"),
]
SEEDS = [0, 1, 2]
SCRIPTS = (
    "extract_audio", "synthesize_speech", "transcribe", "annotate_words", "extract_features",
    "predict", "roi_table", "volumes", "plots", "report",
)  # fmt: skip
SKIP_PARTS = {"logs", "benchmarks", "plots"}


def _outputs(results: Path) -> dict[str, Path]:
    """Final-named outputs to compare: Zarr stores, TSV, JSON, NIfTI (not temp siblings)."""
    found = {}
    for path in sorted(results.rglob("*")):
        rel = path.relative_to(results)
        if SKIP_PARTS & set(rel.parts) or any(part.startswith(".") for part in rel.parts):
            continue
        if any(part.endswith(".zarr") for part in rel.parts[:-1]):
            continue  # inside a store: compared as a whole
        if path.suffix == ".zarr" or path.name.endswith((".tsv", ".json", ".nii.gz", ".wav")):
            found[str(rel)] = path
    return found


def _zarr_content(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    group = zarr.open_group(str(path), mode="r")
    attrs = {k: v for k, v in dict(group.attrs).items() if k != "timing"}
    return attrs, {name: np.asarray(arr[...]) for name, arr in group.arrays()}


def _same(a: Path, b: Path) -> str | None:
    """None if outputs ``a`` and ``b`` have the same content, else why not."""
    try:
        if a.suffix == ".zarr":
            attrs_a, arrays_a = _zarr_content(a)
            attrs_b, arrays_b = _zarr_content(b)
            attrs_a.pop("checkpoint", None), attrs_b.pop("checkpoint", None)
            if attrs_a != attrs_b:
                keys = sorted(
                    k for k in attrs_a.keys() | attrs_b.keys() if attrs_a.get(k) != attrs_b.get(k)
                )
                return f"attrs differ: {[(k, attrs_a.get(k), attrs_b.get(k)) for k in keys]}"
            if arrays_a.keys() != arrays_b.keys():
                return f"array names differ: {sorted(arrays_a)} vs {sorted(arrays_b)}"
            bad = [k for k in arrays_a if not arrays_match(arrays_a[k], arrays_b[k])]
            return f"arrays differ: {bad}" if bad else None
        if a.name.endswith(".nii.gz"):
            ia, ib = nib.load(a), nib.load(b)
            same = arrays_match(ia.get_fdata(), ib.get_fdata()) and np.array_equal(
                ia.affine, ib.affine
            )
            return None if same else "NIfTI data differ"
        if a.suffix == ".json":
            return None if json.loads(a.read_text()) == json.loads(b.read_text()) else "JSON"
        if a.suffix == ".tsv":
            return None if tables_match(a, b) else "TSV differs"
        return None if a.read_bytes() == b.read_bytes() else "bytes differ"
    except Exception as exc:  # an unreadable output is exactly what must not exist
        return f"unreadable: {type(exc).__name__}: {exc}"


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory: pytest.TempPathFactory, demo_stimuli: Path) -> Path:
    folder = tmp_path_factory.mktemp("kill_stimuli")
    shutil.copy(demo_stimuli / "speech_audio.wav", folder / "speech_audio.wav")
    shutil.copy(demo_stimuli / "story.txt", folder / "story.txt")
    return folder


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, demo_models: Path, stimuli: Path) -> Path:
    """One snapshot of the repository: the reference and every seed run the same code."""
    return make_workdir(tmp_path_factory.mktemp("template") / "tribeflow", demo_models, stimuli)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, template: Path) -> tuple[Path, dict]:
    """The uninterrupted run: its results and each script's shortest job duration (s)."""
    workdir = tmp_path_factory.mktemp("ref") / "tribeflow"
    shutil.copytree(template, workdir, symlinks=True)
    proc = subprocess.Popen(
        [SNAKEMAKE, "--configfile", "test_config.yaml", "--cores", "1"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    root = psutil.Process(proc.pid)
    started: dict[int, tuple[str, float]] = {}
    durations: dict[str, float] = {}
    while proc.poll() is None:
        running = set()
        job, script = _job_process(root, SCRIPTS, set())
        if job is not None:
            running.add(job.pid)
            started.setdefault(job.pid, (script, time.monotonic()))
        for pid, (script, t0) in list(started.items()):
            if pid not in running:
                took = time.monotonic() - t0
                durations[script] = min(durations.get(script, took), took)
                del started[pid]
        time.sleep(0.01)
    assert proc.returncode == 0, "the uninterrupted run failed"
    return workdir / "results", durations


def _job_process(
    root: psutil.Process, scripts: Collection[str], seen: set[int]
) -> tuple[psutil.Process | None, str]:
    """A running job (``.snakemake/scripts/tmpXXXX.<script>.py``) of one of ``scripts``."""
    try:
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return None, ""
    for child in children:
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        if child.pid in seen or not argv or Path(argv[0]).name in {"bash", "sh"}:
            continue  # skip Snakemake's shell wrapper: kill the Python job itself
        cmd = " ".join(argv)
        for script in scripts:
            if ".snakemake/scripts/" in cmd and f".{script}.py" in cmd:
                return child, script
    return None, ""


def _kill_next(
    workdir: Path,
    remaining: set[str],
    durations: dict[str, float],
    rng: random.Random,
    whole_group: bool,
) -> tuple[str, float] | None:
    """Run the workflow; SIGKILL the first job of a ``remaining`` script at a random moment.

    The moment is a random fraction of that script's job duration in the
    uninterrupted run; a job that ends first is let go and the next one tried
    (half as late). Returns ``(script, delay_s)`` of the kill, or None.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [SNAKEMAKE, "--configfile", "test_config.yaml", "--cores", "1", "--rerun-incomplete"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )  # fmt: skip
    root = psutil.Process(proc.pid)
    hit = None
    seen: set[int] = set()
    scale = dict.fromkeys(remaining, 1.0)
    deadline = time.monotonic() + 400
    try:
        while hit is None and proc.poll() is None and time.monotonic() < deadline:
            job, script = _job_process(root, remaining, seen)
            if job is None:
                time.sleep(0.01)
                continue
            seen.add(job.pid)
            delay_s = rng.uniform(0.05, 0.9) * durations.get(script, 1.0) * scale[script]
            try:
                job.wait(timeout=max(job.create_time() + delay_s - time.time(), 0.0))
                scale[script] /= 2  # it finished first
                continue
            except psutil.TimeoutExpired:
                pass
            except psutil.NoSuchProcess:
                continue
            try:
                if whole_group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    job.kill()
                hit = (script, delay_s)
            except (ProcessLookupError, psutil.NoSuchProcess):
                scale[script] /= 2
        proc.wait(timeout=400)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return hit


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_anywhere_then_rerun_incomplete(
    seed: int, tmp_path: Path, template: Path, reference: Path
) -> None:
    """Kill each rule once (one kill per run, random moment and mode), then finish."""
    rng = random.Random(seed)
    ref_results, durations = reference
    ref_outputs = _outputs(ref_results)
    workdir = tmp_path / "tribeflow"
    shutil.copytree(template, workdir, symlinks=True)
    results = workdir / "results"
    hits = []
    remaining = set(SCRIPTS)
    while remaining:
        whole_group = rng.random() < 0.5
        hit = _kill_next(workdir, remaining, durations, rng, whole_group)
        if hit is None:
            break  # the workflow finished: no job of a remaining script was left
        script, delay_s = hit
        remaining.discard(script)
        hits.append(f"{script}+{delay_s:.2f}s{' (snakemake too)' if whole_group else ''}")
        # Nothing under a final name is partial: it is absent or equals the uninterrupted run.
        after_kill = _outputs(results) if results.exists() else {}
        partial = {
            rel: why for rel, path in after_kill.items() if (why := _same(path, ref_outputs[rel]))
        }
        assert not partial, f"seed {seed}, after killing {hits[-1]}: partial outputs {partial}"
        if whole_group:  # a killed Snakemake leaves its lock: the documented recovery
            snakemake(workdir, "--unlock")
    assert len(hits) >= len(SCRIPTS) - 1, f"seed {seed}: kills landed only in {hits}"

    snakemake(workdir, "--cores", "1", "--rerun-incomplete")
    final = _outputs(results)
    assert final.keys() == ref_outputs.keys()
    differ = {rel: why for rel, path in final.items() if (why := _same(path, ref_outputs[rel]))}
    assert not differ, f"seed {seed}, kills {hits}: {differ}"
    leftovers = [p.name for p in results.rglob(".*.tmp-*")]
    print(f"seed {seed}: kills {hits}; temp leftovers {leftovers}; job s {durations}")

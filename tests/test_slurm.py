"""The demo workflow through a real single-node SLURM cluster (marker ``slurm``).

The cluster comes from ``../shared/ci/local-slurm.sh start`` (Debian's slurmctld,
slurmd and munge on localhost). Outputs must equal a local run's, and every job
must have gone through SLURM (its job id in slurmctld's log).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED
from tests.workflow_helpers import CROSS_RUN_ATOL, make_workdir, snakemake, tables_match

pytestmark = pytest.mark.slurm
SLURM_DIR = Path("/tmp/local-slurm")


@pytest.fixture(scope="module")
def slurm_cluster() -> Path:
    """A running local SLURM; started with the shared CI script if needed."""
    script = SHARED / "ci" / "local-slurm.sh"
    if shutil.which("sinfo") is None or subprocess.run(["sinfo"], capture_output=True).returncode:
        if not script.exists():
            pytest.skip(f"no SLURM here and {script} is absent")
        started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True)
        if started.returncode:
            pytest.skip(f"could not start the local SLURM cluster: {started.stderr[-500:]}")
    idle = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout
    assert "idle" in idle or "mix" in idle, f"local SLURM node not usable: {idle!r}"
    return SLURM_DIR


def _completed_slurm_jobs(log_dir: Path) -> set[str]:
    """Ids of the batch jobs slurmctld saw finish with exit status 0."""
    text = (log_dir / "slurmctld.log").read_text(errors="replace")
    return set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", text))


def test_demo_through_slurm_equals_local_run(
    slurm_cluster: Path, tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
    from tribe_core.segments import read_predictions

    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    for name in ("story.txt", "speech_audio.wav"):
        shutil.copy(demo_stimuli / name, stimuli)
    local = make_workdir(tmp_path / "local", demo_models, stimuli)
    snakemake(local, "--cores", "2")
    on_slurm = make_workdir(tmp_path / "slurm", demo_models, stimuli)
    before = _completed_slurm_jobs(slurm_cluster / "log")
    proc = snakemake(on_slurm, "--profile", "profiles/slurm-local")
    out = proc.stdout + proc.stderr
    new_ids = _completed_slurm_jobs(slurm_cluster / "log") - before
    n_jobs = int(re.search(r"^total\s+(\d+)", out, re.M).group(1)) - 1  # minus localrule all
    assert n_jobs >= 10
    assert len(new_ids) >= n_jobs, f"{len(new_ids)} SLURM jobs for {n_jobs} workflow jobs"
    for name in ("story", "speech_audio"):
        a = read_predictions(local / "results" / name / "predictions.zarr")
        b = read_predictions(on_slurm / "results" / name / "predictions.zarr")
        np.testing.assert_allclose(a.predictions, b.predictions, rtol=0, atol=CROSS_RUN_ATOL)
        table = Path("results", name, "rois", "roi_mean.tsv")
        assert tables_match(on_slurm / table, local / table)

"""Optional products through the workflow: modality contributions and evaluation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.conftest import require_shared
from tests.workflow_helpers import make_workdir, snakemake


def test_contributions_and_evaluation(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
    require_shared("atlases", "hcp_mmp1_fsaverage")
    from tribe_core.segments import read_predictions

    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    shutil.copy(demo_stimuli / "story.txt", stimuli)
    work = make_workdir(tmp_path / "work", demo_models, stimuli)
    snakemake(work, "--cores", "2", "results/story/predictions.zarr")
    predictions = read_predictions(work / "results/story/predictions.zarr").predictions
    # A "real" run: the prediction scaled plus noise, so r is high but not 1.
    rng = np.random.default_rng(0)
    real = 2 * predictions + 0.1 * predictions.std() * rng.standard_normal(predictions.shape)
    np.save(tmp_path / "real.npy", real.astype(np.float32))

    config_path = work / "test_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["products"].update(contributions=True, real_fmri={"story": str(tmp_path / "real.npy")})
    config_path.write_text(yaml.safe_dump(config))
    snakemake(work, "--cores", "2", "results/story/contributions", "results/story/evaluation")

    table = pd.read_csv(work / "results/story/contributions/contributions.tsv", sep="\t")
    assert len(table) == 20484
    assert {"text_mean", "audio_mean", "dominant"} <= set(table.columns)
    assert set(table["dominant"]) <= {"text", "audio"} and table["text_abs"].max() > 0
    assert (work / "results/story/contributions/contributions.png").stat().st_size > 10_000
    summary = pd.read_csv(work / "results/story/evaluation/evaluation_summary.tsv", sep="\t")
    r = float(summary.set_index("metric").loc["mean_pearson_r", "value"])
    assert 0.9 < r < 1.0

"""Products through the workflow: contributions, evaluation, the movie, the report, the TR table."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.test_products_report import _local_references
from tests.workflow_helpers import make_workdir, snakemake


def test_contributions_and_evaluation(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
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


def test_one_modality_stimulus_products(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
    """The demo's speech audio with an empty word list: audio is its only modality.

    Its TR table has a row per prediction row and its real TR count, its contributions
    hold the audio map, its movie lasts n_trs * TR, and its report names no other file.
    """
    import zarr

    from tribe_core.io.zarr_store import read_attrs

    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    shutil.copy(demo_stimuli / "speech_audio.wav", stimuli)
    (stimuli / "speech_audio.words.tsv").write_text("word\tstart\tduration\n")
    work = make_workdir(tmp_path / "work", demo_models, stimuli)
    config_path = work / "test_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["products"].update(contributions=True, movie=True)
    config_path.write_text(yaml.safe_dump(config))
    base = work / "results" / "speech_audio"
    snakemake(
        work, "--cores", "2",
        *(f"results/speech_audio/{p}" for p in ("report.html", "plots", "contributions")),
    )  # fmt: skip
    present = [
        m for m in ("text", "audio", "video")
        if (base / "features" / f"{m}.zarr").exists()
        and read_attrs(base / "features" / f"{m}.zarr")["present"]
    ]  # fmt: skip
    assert present == ["audio"]

    # The TR table lines up with the rows; n_trs is the stimulus', not the segment's 100.
    duration_s = json.loads((base / "media.json").read_text())["duration_s"]
    group = zarr.open_group(str(base / "predictions.zarr"), mode="r")
    n_trs, n_rows = math.ceil(duration_s), group["predictions"].shape[0]
    assert group.attrs["n_trs"] == n_trs < 100 and group.attrs["n_kept_trs"] == n_rows
    for name in ("tr_index", "tr_start_s", "tr_response_time_s", "tr_segment"):
        assert group[name].shape == (n_rows,), name
    assert group["tr_index"][:].tolist() == list(range(n_rows)) and n_rows == n_trs

    # Contributions: one map, the audio one (prediction minus all-zero-filled prediction).
    table = pd.read_csv(base / "contributions" / "contributions.tsv", sep="\t")
    assert [c for c in table.columns if c.endswith("_mean")] == ["audio_mean"]
    assert table["audio_abs"].max() > 0 and set(table["dominant"]) == {"audio"}

    # The movie plays in stimulus time: n_trs TRs of 1 s.
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
         str(base / "plots" / "movie.mp4")],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    movie_s = float(json.loads(probe.stdout)["format"]["duration"])
    assert abs(movie_s - n_trs * float(group.attrs["tr_s"])) <= 1 / 25

    # The report references no file, also as `snakemake --report` zips it; the audio
    # plays from the page.
    snakemake(work, "--report", "report.zip", "results/speech_audio/report.html")
    with zipfile.ZipFile(work / "report.zip") as archive:
        zipped = [n for n in archive.namelist() if "/data/raw/" in n and n.endswith("report.html")]
        assert len(zipped) == 1, archive.namelist()  # report/report.html is Snakemake's own
        page = archive.read(zipped[0]).decode()
    assert page == (base / "report.html").read_text()
    assert _local_references(page) == [] and '<audio id="media" src="data:audio/wav' in page

"""Evaluation against a lab's fMRIPrep surface BOLD, on files laid out as fMRIPrep writes them."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.test_insilico_contrasts import write_store
from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.insilico import stages
from tribe_core.insilico.evaluation import (
    align_to_prediction,
    evaluate_against_bold,
    evaluate_occurrences,
)
from tribe_core.insilico.fmriprep import (
    find_bold_runs,
    parse_entities,
    stimulus_occurrences,
)
from tribe_core.products import N_VERTICES, N_VERTICES_PER_HEMI
from tribe_core.products.atlas import load_hcp_mmp1

N_ROWS = 100  # prediction rows (1 s TRs) of the stimulus "clip"
OFFSET_S = 5.0
ONSET_S = 10.0
NOISE_SD = 1.0


def latent(times_s: np.ndarray, n_vertices: int = N_VERTICES, seed: int = 0) -> np.ndarray:
    """Smooth per-vertex signals of about unit variance at ``times_s``: ``[n, n_vertices]``."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.02, 0.08, (3, n_vertices))
    phase = rng.uniform(0, 2 * np.pi, (3, n_vertices))
    t = np.asarray(times_s, dtype=np.float64)[None, :, None]
    return (np.sqrt(2 / 3) * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])).sum(0)


def write_bold(path_left: Path, data: np.ndarray) -> None:
    """Both hemispheres of ``[n_samples, 2 * n]`` as fMRIPrep's GIFTIs (one array per volume)."""
    half = data.shape[1] // 2
    for hemi, part in (("L", data[:, :half]), ("R", data[:, half:])):
        path = Path(str(path_left).replace("hemi-L", f"hemi-{hemi}"))
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = [nib.gifti.GiftiDataArray(np.ascontiguousarray(row, np.float32)) for row in part]
        nib.save(nib.gifti.GiftiImage(darrays=arrays), path)


def bold_name(sub: str, task: str, run: int | None, space: str = "fsaverage5") -> str:
    run_part = f"_run-{run}" if run is not None else ""
    return f"sub-{sub}_task-{task}{run_part}_hemi-L_space-{space}_bold.func.gii"


def lab_run(
    deriv: Path,
    sub: str,
    run: int,
    *,
    seed: int,
    tr_s: float = 1.0,
    n_samples: int = 120,
    space: str = "fsaverage5",
    sidecar: bool = True,
    task: str = "loc",
) -> Path:
    """One run showing "clip" at ONSET_S: the latent signal delayed by the offset, plus noise."""
    per_hemi = {"fsaverage5": N_VERTICES_PER_HEMI, "fsaverage6": 40962}[space]
    times = np.arange(n_samples) * tr_s - ONSET_S - OFFSET_S  # stimulus time of each sample
    rng = np.random.default_rng(seed)
    data = NOISE_SD * rng.standard_normal((n_samples, 2 * per_hemi))
    inside = (times >= 0) & (times <= N_ROWS - 1)
    signal = latent(times[inside])
    data[np.ix_(inside, np.arange(N_VERTICES_PER_HEMI))] += signal[:, :N_VERTICES_PER_HEMI]
    right = per_hemi + np.arange(N_VERTICES_PER_HEMI)
    data[np.ix_(inside, right)] += signal[:, N_VERTICES_PER_HEMI:]
    left = deriv / f"sub-{sub}" / "func" / bold_name(sub, task, run, space)
    write_bold(left, data)
    if sidecar:
        meta = {"RepetitionTime": tr_s, "SliceTimingCorrected": False}
        left.with_name(left.name.replace(".func.gii", ".json")).write_text(json.dumps(meta))
    return left


def events(bids: Path, sub: str, run: int, task: str = "loc") -> Path:
    path = bids / f"sub-{sub}" / "func" / f"sub-{sub}_task-{task}_run-{run}_events.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "onset\tduration\ttrial_type\tstim_file\n"
        "2.0\t4.0\tfixation\tn/a\n"
        f"{ONSET_S}\t{N_ROWS}.0\tvideo\tstimuli/clip.mp4\n"
    )
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """fMRIPrep derivatives + raw BIDS: "clip" in 2 runs of 2 subjects (4 occurrences)."""
    root = tmp_path_factory.mktemp("lab")
    deriv, bids = root / "derivatives" / "fmriprep", root / "bids"
    (deriv / "dataset_description.json").parent.mkdir(parents=True)
    (deriv / "dataset_description.json").write_text('{"Name": "fMRIPrep - fMRI PREProcessing"}')
    for i, (sub, run) in enumerate([("01", 1), ("01", 2), ("02", 1), ("02", 2)]):
        # sub-02 has no fMRIPrep sidecar: its TR comes from the raw dataset's task sidecar.
        lab_run(deriv, sub, run, seed=10 + i, sidecar=sub == "01")
        events(bids, sub, run)
    (bids / "task-loc_bold.json").write_text('{"RepetitionTime": 1.0, "TaskName": "loc"}')
    # Files fMRIPrep writes beside the surface BOLD, which the reader must ignore.
    func = deriv / "sub-01" / "func"
    (func / "sub-01_task-loc_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz").touch()
    (func / "sub-01_task-loc_run-1_desc-confounds_timeseries.tsv").write_text("a\n1\n")
    return deriv, bids


def test_reader_finds_runs_tr_and_events_as_fmriprep_lays_them_out(lab: tuple[Path, Path]) -> None:
    deriv, bids = lab
    runs = find_bold_runs(deriv, space="fsaverage5", bids_dir=bids)
    assert [r.label for r in runs] == [
        "sub-01_task-loc_run-1", "sub-01_task-loc_run-2", "sub-02_task-loc_run-1",
        "sub-02_task-loc_run-2",
    ]  # fmt: skip
    assert all(r.tr_s == 1.0 and r.start_time_s == 0.0 for r in runs)
    assert runs[0].sidecar.name == "sub-01_task-loc_run-1_hemi-L_space-fsaverage5_bold.json"
    assert runs[2].sidecar == bids / "task-loc_bold.json"
    assert runs[0].right.name == "sub-01_task-loc_run-1_hemi-R_space-fsaverage5_bold.func.gii"
    assert runs[3].events == bids / "sub-02" / "func" / "sub-02_task-loc_run-2_events.tsv"
    assert [r.label for r in find_bold_runs(deriv, subjects=["sub-02"], bids_dir=bids)] == [
        "sub-02_task-loc_run-1", "sub-02_task-loc_run-2",
    ]  # fmt: skip
    assert find_bold_runs(deriv, space="fsaverage6", bids_dir=bids) == []

    found = stimulus_occurrences(runs, {"clip", "other", "a"})  # "n/a" names no stimulus "a"
    assert list(found) == ["clip"] and len(found["clip"]) == 4
    assert {o.onset_s for o in found["clip"]} == {ONSET_S}
    by_task = stimulus_occurrences(runs, {"clip"}, run_map={"task-loc_run-01": "clip"})
    assert [o.onset_s for o in by_task["clip"]].count(0.0) == 2  # run-1 of both subjects
    assert parse_entities("sub-01_ses-a_task-x_run-2_space-fsaverage_hemi-R_bold.func.gii") == {
        "sub": "01", "ses": "a", "task": "x", "run": "2", "space": "fsaverage", "hemi": "R",
    }  # fmt: skip


def test_missing_tr_missing_hemisphere_and_bad_folders_are_clear_errors(tmp_path: Path) -> None:
    deriv = tmp_path / "fmriprep"
    left = lab_run(deriv, "01", 1, seed=0, sidecar=False, n_samples=3)
    with pytest.raises(TribeInputError, match="no JSON sidecar with RepetitionTime") as info:
        find_bold_runs(deriv)
    assert str(left) in str(info.value)
    left.with_name(left.name.replace(".func.gii", ".json")).write_text('{"RepetitionTime": 0}')
    with pytest.raises(TribeInputError, match="positive number"):
        find_bold_runs(deriv)
    Path(str(left).replace("hemi-L", "hemi-R")).unlink()
    with pytest.raises(TribeInputError, match="right hemisphere missing"):
        find_bold_runs(deriv)
    with pytest.raises(TribeConfigError, match="does not exist"):
        find_bold_runs(tmp_path / "nowhere")
    with pytest.raises(TribeConfigError, match="space must be one of"):
        find_bold_runs(deriv, space="fsLR")


def test_alignment_interpolates_between_samples_at_the_offset() -> None:
    """A 2 s TR and an onset off the grid: linear interpolation of a slow signal is close."""
    response = np.arange(N_ROWS) + OFFSET_S
    onset, tr = 7.3, 2.0
    sample_times = np.arange(50) * tr  # 98 s: the last 14 rows fall after the run
    bold = latent(sample_times - onset - OFFSET_S, 50)  # the signal at each sample time
    aligned = align_to_prediction(
        bold, tr_s=tr, start_time_s=0.0, onset_s=onset, response_times_s=response
    )
    truth = latent(np.arange(N_ROWS, dtype=float), 50)
    rows = ~np.isnan(aligned).any(1)
    assert rows.sum() == int((49 * tr - onset - OFFSET_S) // 1) + 1 == 86
    error = np.abs(aligned[rows] - truth[rows]).mean()
    assert error < 0.06  # linear interpolation of a <= 0.08 Hz signal sampled every 2 s
    r = [np.corrcoef(aligned[rows, v], truth[rows, v])[0, 1] for v in range(50)]
    assert min(r) > 0.98
    late = align_to_prediction(
        bold, tr_s=tr, start_time_s=1.0, onset_s=onset, response_times_s=response
    )
    assert np.abs(late[rows][:-1] - truth[rows][:-1]).mean() > 3 * error  # StartTime shifts


def test_r_and_noise_ceiling_on_repeated_runs(
    lab: tuple[Path, Path], synthetic_atlas: Path
) -> None:
    """4 occurrences of signal + unit noise: reliability 1 / (1 + 1/4), r reaches the ceiling."""
    deriv, bids = lab
    runs = find_bold_runs(deriv, bids_dir=bids)
    occurrences = [o.as_dict() for o in stimulus_occurrences(runs, {"clip"})["clip"]]
    prediction = latent(np.arange(N_ROWS, dtype=float))
    response = np.arange(N_ROWS) + OFFSET_S
    atlas = load_hcp_mmp1(synthetic_atlas)
    result = evaluate_occurrences(
        prediction, response, occurrences, atlas=atlas, detrend=False, seed=0
    )
    vertices = result.vertices
    signal_var = prediction.var(0)
    expected = (signal_var / (signal_var + NOISE_SD**2 / 4)).mean()
    assert vertices["reliability"].mean() == pytest.approx(expected, abs=0.02)
    assert vertices["noise_ceiling"].mean() == pytest.approx(np.sqrt(expected), abs=0.02)
    assert vertices["r"].mean() == pytest.approx(vertices["noise_ceiling"].mean(), abs=0.03)
    assert vertices["r_over_ceiling"].median() == pytest.approx(1.0, abs=0.05)
    summary = result.summary.set_index("metric")["value"]
    assert summary["n_occurrences"] == 4 and summary["n_subjects"] == 2
    assert summary["n_rows"] == N_ROWS
    assert len(result.runs) == 4 and (result.runs["mean_r"] > 0.5).all()
    rois = result.rois.set_index("roi")  # type: ignore[union-attr]
    # A ROI mean averages the noise of hundreds of vertices but also their unrelated signals.
    assert np.isfinite(rois["r"]).all() and (rois["noise_ceiling"] > 0).all()

    # The wrong hemodynamic offset misaligns the signal: r drops.
    shifted = evaluate_occurrences(prediction, response - OFFSET_S, occurrences, detrend=False)
    assert shifted.vertices["r"].mean() < vertices["r"].mean() - 0.2


def test_single_occurrence_has_r_but_no_ceiling() -> None:
    prediction = latent(np.arange(30, dtype=float), N_VERTICES, seed=1)
    real = prediction + np.random.default_rng(2).standard_normal(prediction.shape)
    result = evaluate_against_bold(prediction, [real])
    assert result.vertices["r"].mean() > 0.4
    assert result.vertices["noise_ceiling"].isna().all()
    with pytest.raises(TribeInputError, match="only 0 prediction rows"):
        evaluate_against_bold(prediction, [np.full_like(prediction, np.nan)])


def test_fsaverage6_runs_are_reduced_to_fsaverage5(tmp_path: Path) -> None:
    deriv = tmp_path / "fmriprep"
    lab_run(deriv, "03", 1, seed=5, space="fsaverage6", n_samples=60, task="movie")
    runs = find_bold_runs(deriv, space="fsaverage6")
    assert len(runs) == 1 and runs[0].entities["space"] == "fsaverage6"
    occurrences = stimulus_occurrences(runs, {"film"}, run_map={"task-movie": "film"})["film"]
    assert occurrences[0].onset_s == 0.0
    occ = occurrences[0].as_dict()
    occ["onset_s"] = ONSET_S  # the run was written with the stimulus at ONSET_S
    prediction = latent(np.arange(N_ROWS, dtype=float))
    result = evaluate_occurrences(prediction, np.arange(N_ROWS) + OFFSET_S, [occ], detrend=False)
    assert result.summary.set_index("metric").loc["n_rows", "value"] == 60 - ONSET_S - OFFSET_S
    assert result.vertices["r"].mean() > 0.5  # the first 10,242 vertices per hemisphere


def test_evaluation_stage_writes_tables_and_maps(
    lab: tuple[Path, Path], synthetic_atlas: Path, tmp_path: Path
) -> None:
    deriv, bids = lab
    store = write_store(
        tmp_path / "clip" / "predictions.zarr", latent(np.arange(N_ROWS, dtype=float))
    )
    occurrences = stimulus_occurrences(find_bold_runs(deriv, bids_dir=bids), {"clip"})["clip"]
    out = tmp_path / "clip" / "insilico" / "fmriprep"
    stages.run_fmriprep_evaluation(
        store,
        out,
        occurrences=[o.as_dict() for o in occurrences],
        atlas_dir=str(synthetic_atlas),
        hemodynamic_offset_s=None,  # the store's 5 s
        detrend=True,
        seed=0,
        stimulus="clip",
    )
    files = {p.name for p in out.iterdir()}
    assert {
        "vertices.tsv", "rois.tsv", "runs.tsv", "summary.tsv", "r.lh.func.gii",
        "noise_ceiling.rh.func.gii", "r_over_ceiling.lh.func.gii", "r_and_ceiling.png",
        "r_over_ceiling.png",
    } <= files  # fmt: skip
    summary = pd.read_csv(out / "summary.tsv", sep="\t").set_index("metric")["value"]
    assert summary["hemodynamic_offset_s"] == OFFSET_S and summary["n_occurrences"] == 4
    assert summary["mean_r"] > 0.8 and summary["mean_noise_ceiling"] > 0.8
    r_map = nib.load(out / "r.lh.func.gii").darrays[0].data
    vertices = pd.read_csv(out / "vertices.tsv", sep="\t")
    np.testing.assert_allclose(r_map, vertices["r"].to_numpy()[:N_VERTICES_PER_HEMI], rtol=1e-5)

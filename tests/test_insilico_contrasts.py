"""Contrasts on synthetic prediction stores with an effect planted in one ROI."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tribe_core.errors import TribeInputError
from tribe_core.insilico import stages
from tribe_core.insilico.contrasts import ContrastSettings, run_contrast
from tribe_core.insilico.responses import read_responses, window_mean
from tribe_core.products import N_VERTICES
from tribe_core.products.atlas import Parcellation, load_hcp_mmp1
from tribe_core.segments import PredictionResult, write_predictions

N_TRS = 20
WINDOW = (5, 15)  # the planted response lasts TRs 5..14
PLANTED = 4.0  # in units of the between-stimulus noise (sd 1)


def write_store(path: Path, predictions: np.ndarray, tr_s: float = 1.0) -> Path:
    """A ``predictions.zarr`` as the predict stage writes it (every TR kept)."""
    n = predictions.shape[0]
    index = np.arange(n)
    trs = pd.DataFrame(
        {
            "tr_index": index,
            "tr_start_s": index * tr_s,
            "response_time_s": index * tr_s + 5.0,
            "segment": np.zeros(n, dtype=np.int64),
            "kept": np.ones(n, dtype=bool),
            "prediction_row": index,
        }
    )
    result = PredictionResult(predictions.astype(np.float32), trs, 5.0, tr_s)
    return write_predictions(path, result, {"stimulus": path.parent.name})


def planted_stores(
    root: Path,
    atlas: Parcellation,
    *,
    n_per_group: int = 12,
    effect: float = PLANTED,
    seed: int = 0,
) -> dict[str, Path]:
    """``face*`` and ``place*`` stores; faces respond ``effect`` more in L_FFC in the window."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(N_VERTICES)  # shared by every stimulus: cancels out
    roi = atlas.vertices("FFC", "left")
    stores = {}
    for kind in ("face", "place"):
        for i in range(n_per_group):
            name = f"{kind}{i:02d}"
            stimulus_pattern = rng.standard_normal(N_VERTICES)
            preds = base + stimulus_pattern + 0.5 * rng.standard_normal((N_TRS, N_VERTICES))
            if kind == "face" and effect:
                preds[WINDOW[0] : WINDOW[1], roi] += effect
            stores[name] = write_store(root / name / "predictions.zarr", preds)
    return stores


@pytest.fixture(scope="module")
def atlas(synthetic_atlas: Path) -> Parcellation:
    return load_hcp_mmp1(synthetic_atlas)


@pytest.fixture(scope="module")
def responses(tmp_path_factory: pytest.TempPathFactory, atlas: Parcellation) -> dict[str, Path]:
    """Windowed response maps of the planted stores, through the response stage."""
    root = tmp_path_factory.mktemp("planted")
    out = {}
    for name, store in planted_stores(root, atlas).items():
        out[name] = root / name / "insilico" / "response.npz"
        stages.run_stimulus_response(store, out[name], window_trs=list(WINDOW), stimulus=name)
    return out


def _groups(names: list[str]) -> dict[str, int]:
    return {n: 1 if n.startswith("face") else -1 for n in names}


def test_planted_effect_is_found_in_its_roi_at_the_right_strength(
    responses: dict[str, Path], atlas: Parcellation
) -> None:
    names, y, n_trs = read_responses(responses)
    assert (n_trs == WINDOW[1] - WINDOW[0]).all()
    settings = ContrastSettings(n_permutations=500, seed=0)
    result = run_contrast(
        names, y, _groups(names), settings=settings, atlas=atlas, contrast="faces_vs_places"
    )
    roi = np.zeros(N_VERTICES, bool)
    roi[atlas.vertices("FFC", "left")] = True
    vertices = result.vertices
    assert vertices.loc[roi, "effect"].mean() == pytest.approx(PLANTED, abs=0.1)
    assert abs(vertices.loc[~roi, "effect"].mean()) < 0.02
    significant = vertices["significant"].to_numpy()
    assert significant[roi].mean() > 0.95  # found: nearly every vertex of L_FFC at p_FWE < .05
    assert not significant[~roi].any()  # and nothing else
    assert (vertices.loc[roi, "t"] > 0).all()

    assert result.top is not None and result.rois is not None
    assert result.top.loc[0, "roi"] == "L_FFC" and result.top.loc[0, "rank"] == 1
    rois = result.rois.set_index("roi")
    assert rois.loc["L_FFC", "effect"] == pytest.approx(PLANTED, abs=0.05)
    assert rois.loc["L_FFC", "p_fwe"] < 0.05 and rois.loc["L_FFC", "fraction_significant"] > 0.95
    assert rois.loc["FFC", "effect"] == pytest.approx(PLANTED / 2, rel=0.1)  # half its vertices
    assert set(rois.index[rois["significant"]]) <= {"L_FFC", "FFC"}
    assert rois.loc["R_FFC", "p_fwe"] > 0.05

    summary = result.summary.iloc[0]
    assert summary["n_stimuli"] == 24 and summary["n_plus"] == 12 and summary["n_minus"] == 12
    assert summary["n_permutations"] == 500 and summary["statistic"] == "welch"
    assert summary["top_roi"] == "L_FFC"
    assert summary["n_vertices_significant"] == significant.sum()


def test_the_whole_response_dilutes_an_effect_confined_to_a_window(
    tmp_path: Path, atlas: Parcellation
) -> None:
    """Without a window the mean over 20 TRs holds the 10-TR effect at half strength."""
    stores = planted_stores(tmp_path, atlas, n_per_group=4)
    roi = atlas.vertices("FFC", "left")
    from tribe_core.segments import read_predictions

    result = read_predictions(stores["face00"])
    whole, n_all = window_mean(result.predictions, np.arange(N_TRS), None)
    part, n_part = window_mean(result.predictions, np.arange(N_TRS), WINDOW)
    assert (n_all, n_part) == (N_TRS, 10)
    np.testing.assert_allclose(whole, result.predictions.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(part, result.predictions[5:15].mean(0), rtol=1e-5, atol=1e-6)
    # The stimulus' own pattern is in both; the effect is whole in one, halved in the other.
    assert (part[roi] - whole[roi]).mean() == pytest.approx(PLANTED / 2, abs=0.2)
    with pytest.raises(TribeInputError, match="no kept TR in the window"):
        window_mean(result.predictions, np.arange(N_TRS), (30, 40), stimulus="face00")


def test_null_stores_find_nothing(tmp_path: Path, atlas: Parcellation) -> None:
    stores = planted_stores(tmp_path, atlas, effect=0.0, seed=3)
    paths = {}
    for name, store in stores.items():
        paths[name] = tmp_path / f"{name}.npz"
        stages.run_stimulus_response(store, paths[name], window_trs=None, stimulus=name)
    names, y, _ = read_responses(paths)
    for correction in ("fwe", "fdr"):
        settings = ContrastSettings(n_permutations=300, seed=1, correction=correction)
        result = run_contrast(names, y, _groups(names), settings=settings, atlas=atlas)
        assert result.summary.loc[0, "n_vertices_significant"] == 0, correction
        assert result.rois is not None and not result.rois["significant"].any()
        # About 5 % of null vertices fall under p < .05 before correction.
        assert 0.03 < (result.vertices["p_uncorrected"] < 0.05).mean() < 0.07


def test_a_covariate_removes_a_confound(tmp_path: Path, atlas: Parcellation) -> None:
    """V1 follows luminance, which differs between conditions: the covariate explains it."""
    rng = np.random.default_rng(5)
    names, rows, luminance = [], [], {}
    v1, ffc = atlas.vertices("V1", "both"), atlas.vertices("FFC", "left")
    for kind, lum_mean in (("face", 1.0), ("place", 0.0)):
        for i in range(10):
            name = f"{kind}{i}"
            lum = lum_mean + 0.5 * rng.standard_normal()
            y = rng.standard_normal(N_VERTICES)
            y[v1] += 3.0 * lum
            if kind == "face":
                y[ffc] += PLANTED
            names.append(name)
            rows.append(y)
            luminance[name] = lum
    y = np.stack(rows)
    settings = ContrastSettings(n_permutations=300, seed=2)
    plain = run_contrast(names, y, _groups(names), settings=settings, atlas=atlas)
    adjusted = run_contrast(
        names,
        y,
        _groups(names),
        covariates={"luminance": luminance},
        settings=settings,
        atlas=atlas,
    )
    plain_rois, adj_rois = plain.rois.set_index("roi"), adjusted.rois.set_index("roi")  # type: ignore[union-attr]
    assert plain_rois.loc["V1", "significant"] and not adj_rois.loc["V1", "significant"]
    assert adj_rois.loc["V1", "effect"] == pytest.approx(0.0, abs=0.5)
    assert adj_rois.loc["L_FFC", "significant"]
    assert adj_rois.loc["L_FFC", "effect"] == pytest.approx(PLANTED, abs=0.5)
    assert adjusted.summary.loc[0, "statistic"] == "glm"
    assert adjusted.summary.loc[0, "covariates"] == "luminance"


def test_contrast_stage_writes_tables_maps_and_plots(
    responses: dict[str, Path], synthetic_atlas: Path, tmp_path: Path
) -> None:
    out = tmp_path / "faces_vs_places"
    names = list(responses)
    stages.run_contrast(
        list(responses.values()),
        names,
        out,
        contrast="faces_vs_places",
        description="face - place",
        groups=_groups(names),
        covariates={},
        atlas_dir=str(synthetic_atlas),
        n_permutations=200,
        correction="fdr",
        alpha=0.05,
        seed=0,
        statistic="pooled",
        tail="greater",
        top_k=5,
        window_trs=list(WINDOW),
    )
    files = {p.name for p in out.iterdir()}
    assert {
        "vertices.tsv", "rois.tsv", "rois_top.tsv", "summary.tsv", "null_max.tsv",
        "effect.lh.func.gii", "effect.rh.func.gii", "t.lh.func.gii", "t.rh.func.gii",
        "effect.nii.gz", "t.nii.gz", "effect.png", "t_thresholded.png",
    } <= files  # fmt: skip
    summary = pd.read_csv(out / "summary.tsv", sep="\t").iloc[0]
    assert summary["correction"] == "fdr" and summary["tail"] == "greater"
    assert summary["n_permutations"] == 200 and summary["window_trs"] == "5-15"
    assert summary["min_trs_averaged"] == summary["max_trs_averaged"] == 10
    top = pd.read_csv(out / "rois_top.tsv", sep="\t")
    assert len(top) == 5 and top.loc[0, "roi"] == "L_FFC"
    vertices = pd.read_csv(out / "vertices.tsv", sep="\t")
    assert (vertices["p_corrected"] == vertices["p_fdr"]).all()
    lh = nib.load(out / "t.lh.func.gii")
    np.testing.assert_allclose(
        lh.darrays[0].data, vertices["t"].to_numpy()[: N_VERTICES // 2], rtol=1e-5
    )
    volume = nib.load(out / "effect.nii.gz")
    assert volume.shape[:3] == (99, 117, 95) and float(np.asarray(volume.dataobj).max()) > 3
    assert (out / "t_thresholded.png").stat().st_size > 10_000
    assert len(pd.read_csv(out / "null_max.tsv", sep="\t")) == 200

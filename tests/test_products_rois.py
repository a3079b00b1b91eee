"""HCP-MMP1 atlas loading and ROI tables, checked against direct numpy computations."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.conftest import REAL_ATLAS_DIR, require_shared
from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.products import atlas, rois

ATLAS = REAL_ATLAS_DIR


@pytest.fixture(scope="module")
def atlas_dir() -> Path:
    """The real HCP-MMP1 (``../shared``): the checks below need its 180 areas."""
    return require_shared("atlases", "hcp_mmp1_fsaverage")


@pytest.fixture(scope="module")
def predictions() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((7, 20484)).astype(np.float32)


def _annot_vertices(hemi: str, name: str) -> np.ndarray:
    """Vertex indices (0..20483) of ``name`` read straight from the .annot file."""
    labels, _, names = nib.freesurfer.read_annot(str(ATLAS / f"{hemi}.HCP-MMP1.annot"))
    code = [n.decode() for n in names].index(name)
    idx = np.flatnonzero(labels[:10242] == code)
    return idx + (10242 if hemi == "rh" else 0)


def test_atlas_has_180_areas_per_hemisphere(atlas_dir: Path) -> None:
    parc = atlas.load_hcp_mmp1(atlas_dir)
    assert len(parc.areas) == 180
    assert {"V1", "A1", "STSdp", "44", "45"} <= set(parc.areas)
    assert parc.vertex_area.shape == (20484,)
    left, right = parc.vertex_area[:10242], parc.vertex_area[10242:]
    assert len(np.unique(left[left >= 0])) == 180
    assert len(np.unique(right[right >= 0])) == 180
    # Medial wall is unlabelled in both hemispheres.
    assert 500 < (left < 0).sum() < 1500 and 500 < (right < 0).sum() < 1500
    np.testing.assert_array_equal(parc.vertices("V1", "left"), _annot_vertices("lh", "L_V1_ROI"))


def test_missing_atlas_dir_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TribeConfigError, match="HCP-MMP1.annot"):
        atlas.load_hcp_mmp1(tmp_path)
    with pytest.raises(TribeConfigError, match="does not exist"):
        atlas.load_hcp_mmp1(tmp_path / "nowhere")


def test_mne_layout_and_names_are_found(atlas_dir: Path, tmp_path: Path) -> None:
    # MNE's fetch writes fsaverage/label/?h.HCPMMP1.annot; a "combined" variant is ignored.
    label = tmp_path / "fsaverage" / "label"
    label.mkdir(parents=True)
    for hemi in ("lh", "rh"):
        (label / f"{hemi}.HCPMMP1.annot").symlink_to(atlas_dir / f"{hemi}.HCP-MMP1.annot")
        (label / f"{hemi}.HCPMMP1_combined.annot").write_bytes(b"not an annot")
    parc = atlas.load_hcp_mmp1(tmp_path)
    assert len(parc.areas) == 180
    np.testing.assert_array_equal(parc.vertex_area, atlas.load_hcp_mmp1(atlas_dir).vertex_area)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # nibabel reading garbage
def test_corrupt_annot_is_reported(tmp_path: Path) -> None:
    for hemi in ("lh", "rh"):
        (tmp_path / f"{hemi}.HCP-MMP1.annot").write_bytes(b"garbage")
    with pytest.raises(TribeInputError, match="lh.HCP-MMP1.annot"):
        atlas.load_hcp_mmp1(tmp_path)


def test_roi_means_equal_direct_computation(atlas_dir: Path, predictions: np.ndarray) -> None:
    table = rois.roi_timeseries(predictions, atlas_dir)
    assert table.shape == (7, 540)
    for column, verts in (
        ("L_V1", _annot_vertices("lh", "L_V1_ROI")),
        ("R_STSdp", _annot_vertices("rh", "R_STSdp_ROI")),
        ("A1", np.concatenate([_annot_vertices("lh", "L_A1_ROI"),
                               _annot_vertices("rh", "R_A1_ROI")])),
    ):  # fmt: skip
        assert verts.size > 5
        expected = predictions[:, verts].astype(np.float64).mean(axis=1)
        np.testing.assert_allclose(table[column].to_numpy(), expected, rtol=1e-6, atol=1e-7)
    left_only = rois.roi_timeseries(predictions, atlas_dir, hemi="left")
    assert list(left_only.columns[:2]) == ["L_V1", "L_MST"] and left_only.shape[1] == 180
    np.testing.assert_allclose(left_only["L_V1"], table["L_V1"])


def test_wildcards_select_areas(atlas_dir: Path) -> None:
    parc = atlas.load_hcp_mmp1(atlas_dir)
    visual = rois.match_rois(["V*"], parc)
    assert {"V1", "V2", "V3A", "V4t", "VMV1"} <= set(visual)
    assert not any(c.startswith(("L_", "R_")) for c in visual) and "MST" not in visual
    sts = rois.match_rois(["*STS*"], parc)
    assert len(sts) == 12  # STSda/dp/va/vp x (L, R, bilateral)
    assert rois.match_rois(["L_V1", "V1"], parc) == ["L_V1", "V1"]
    with pytest.raises(TribeInputError, match="matches no HCP-MMP1 area"):
        rois.match_rois(["NotAnArea*"], parc)


def test_selection_is_union_of_rois_and_mask(atlas_dir: Path, predictions: np.ndarray) -> None:
    v1 = np.concatenate([_annot_vertices("lh", "L_V1_ROI"), _annot_vertices("rh", "R_V1_ROI")])
    mask = np.zeros(20484, dtype=bool)
    mask[[0, 1, 2, 20483]] = True
    mask[v1[:3]] = True  # overlap counts once
    union = np.union1d(v1, np.flatnonzero(mask))
    values, idx = rois.select_vertices(predictions, atlas_dir, rois=["V1"], vertex_mask=mask)
    np.testing.assert_array_equal(idx, union)
    np.testing.assert_array_equal(values, predictions[:, union])
    table = rois.roi_timeseries(predictions, atlas_dir, rois=["V1"], vertex_mask=mask)
    assert list(table.columns) == ["V1", "selection"]
    stats = rois.roi_mean_table(table, atlas.load_hcp_mmp1(atlas_dir)).set_index("roi")
    assert stats.loc["selection", "n_vertices"] == union.size
    assert stats.loc["V1", "n_vertices"] == v1.size
    np.testing.assert_allclose(
        table["selection"], predictions[:, union].astype(np.float64).mean(axis=1), rtol=1e-6
    )
    only_mask, idx2 = rois.select_vertices(predictions, None, vertex_mask=mask)
    assert only_mask.shape == (7, mask.sum()) and idx2.tolist() == np.flatnonzero(mask).tolist()
    with pytest.raises(TribeInputError, match="20484"):
        rois.selection_mask(atlas_dir, vertex_mask=np.ones(100, dtype=bool))


def test_write_roi_tables(atlas_dir: Path, predictions: np.ndarray, tmp_path: Path) -> None:
    preds = predictions.copy()
    v1 = _annot_vertices("lh", "L_V1_ROI")
    preds[:, v1] += 10.0  # L_V1 dominates: bilateral V1 must rank first
    # All TRs with a kept flag: the table keeps the rows of the kept TRs.
    trs = pd.DataFrame(
        {
            "tr_start_s": np.arange(9, dtype=float),
            "segment": 0,
            "kept": [1] * 5 + [0] + [1] * 2 + [0],
        }
    )
    paths = rois.write_roi_tables(preds, trs, atlas_dir, tmp_path / "rois", top_k=5)
    names = {p.name for p in paths}
    assert {"roi_timeseries.tsv", "roi_mean.tsv", "roi_top.tsv"} <= names
    series = pd.read_csv(tmp_path / "rois" / "roi_timeseries.tsv", sep="\t")
    assert series["tr_start_s"].tolist() == [0, 1, 2, 3, 4, 6, 7]
    np.testing.assert_allclose(
        series["L_V1"], preds[:, v1].astype(np.float64).mean(axis=1), rtol=1e-5
    )
    mean = pd.read_csv(tmp_path / "rois" / "roi_mean.tsv", sep="\t").set_index("roi")
    np.testing.assert_allclose(mean.loc["L_V1", "mean"], preds[:, v1].mean(), rtol=1e-5)
    assert mean.loc["L_V1", "n_vertices"] == v1.size
    top = pd.read_csv(tmp_path / "rois" / "roi_top.tsv", sep="\t")
    assert len(top) == 5 and top["rank"].tolist() == [1, 2, 3, 4, 5]
    assert top.loc[0, "roi"] == "V1" and top["mean"].is_monotonic_decreasing
    subset = rois.write_roi_tables(preds, None, atlas_dir, tmp_path / "sub", rois=["*STS*"])
    cols = pd.read_csv(subset[0], sep="\t").columns
    assert [c for c in cols if "STS" in c] == list(cols[2:]) and len(cols) == 14
    if any(p.suffix == ".parquet" for p in paths):
        back = pd.read_parquet(tmp_path / "rois" / "roi_timeseries.parquet")
        np.testing.assert_allclose(back["L_V1"], series["L_V1"], rtol=1e-5)


def test_bad_inputs_raise(atlas_dir: Path) -> None:
    with pytest.raises(TribeInputError, match=r"\[n_trs, 20484\]"):
        rois.roi_timeseries(np.zeros((3, 100)), atlas_dir)
    with pytest.raises(TribeInputError, match="TR table"):
        rois.write_roi_tables(
            np.zeros((3, 20484)), pd.DataFrame({"tr_start_s": [0.0]}), atlas_dir, Path("/tmp")
        )


def test_synthetic_atlas_roi_tables(synthetic_atlas: Path, predictions: np.ndarray) -> None:
    """ROI means and the top table on the synthetic HCP-style atlas (runs without ../shared)."""
    parc = atlas.load_hcp_mmp1(synthetic_atlas)
    assert len(parc.areas) == 24 and parc.areas[0] == "V1"
    left_v1 = parc.vertices("V1", "left")
    assert left_v1.size > 100 and left_v1.max() < 10242
    preds = predictions.copy()
    preds[:, left_v1] += 5.0
    table = rois.roi_timeseries(preds, parc)
    assert table.shape == (7, 72)  # L_, R_ and bilateral per area
    np.testing.assert_allclose(
        table["L_V1"], preds[:, left_v1].astype(np.float64).mean(axis=1), rtol=1e-6
    )
    medial_wall = parc.vertex_area < 0
    assert 200 < medial_wall[:10242].sum() < 1500
    top = rois.roi_mean_table(table, parc).sort_values("mean", ascending=False)
    assert top.iloc[0]["roi"] == "L_V1"

"""Group tables: stimulus x ROI matrix and representational dissimilarity matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tribe_core.errors import TribeInputError
from tribe_core.insilico import stages
from tribe_core.insilico.group import (
    correlation_distance,
    rdm_features,
    stimulus_roi_matrix,
)
from tribe_core.insilico.responses import write_response
from tribe_core.products import N_VERTICES
from tribe_core.products.atlas import Parcellation, load_hcp_mmp1


@pytest.fixture(scope="module")
def atlas(synthetic_atlas: Path) -> Parcellation:
    return load_hcp_mmp1(synthetic_atlas)


def _responses(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, N_VERTICES)).astype(np.float32)


def test_stimulus_roi_matrix_holds_roi_means(atlas: Parcellation) -> None:
    y = _responses()
    names = [f"s{i}" for i in range(6)]
    table = stimulus_roi_matrix(names, y, atlas, n_trs=np.arange(6) + 10)
    assert list(table.columns[:4]) == ["stimulus", "n_trs", "L_V1", "L_V2"]
    assert len(table.columns) == 2 + 3 * len(atlas.areas)
    ffc, v1 = atlas.vertices("FFC", "left"), atlas.vertices("V1", "both")
    np.testing.assert_allclose(table.loc[3, "L_FFC"], y[3, ffc].astype(float).mean(), rtol=1e-9)
    np.testing.assert_allclose(table.loc[0, "V1"], y[0, v1].astype(float).mean(), rtol=1e-9)
    assert table["stimulus"].tolist() == names and table.loc[5, "n_trs"] == 15


def test_rdm_is_correlation_distance(atlas: Parcellation) -> None:
    y = _responses()
    y[1] = 2 * y[0] + 1  # perfectly correlated with stimulus 0
    y[2] = -y[0]  # anti-correlated
    rdm = correlation_distance(rdm_features(y))
    np.testing.assert_allclose(rdm, 1 - np.corrcoef(y.astype(np.float64)), atol=1e-10)
    assert rdm[0, 1] == pytest.approx(0.0, abs=1e-9) and rdm[0, 2] == pytest.approx(2.0)
    np.testing.assert_array_equal(np.diag(rdm), 0.0)
    np.testing.assert_allclose(rdm, rdm.T)

    # Over a ROI set: only those vertices; or their ROI means.
    mask = np.zeros(N_VERTICES, bool)
    mask[atlas.vertices("FFC", "both")] = True
    mask[atlas.vertices("V1", "both")] = True
    sub = correlation_distance(rdm_features(y, atlas, ["FFC", "V1"]))
    np.testing.assert_allclose(sub, 1 - np.corrcoef(y[:, mask].astype(np.float64)), atol=1e-10)
    means = rdm_features(y, atlas, ["L_*"], space="roi_means")
    assert means.shape == (6, len(atlas.areas))
    first = atlas.vertices(atlas.areas[0], "left")
    np.testing.assert_allclose(means[4, 0], y[4, first].astype(float).mean(), rtol=1e-9)


def test_rdm_refuses_rois_without_atlas_and_constant_rows_are_nan() -> None:
    with pytest.raises(TribeInputError, match="needs the HCP-MMP1 atlas"):
        rdm_features(_responses(), None, ["V1"])
    y = _responses(3)
    y[2] = 1.0
    rdm = correlation_distance(y)
    assert np.isnan(rdm[0, 2]) and rdm[2, 2] == 0.0


def test_group_stages_write_matrix_rdm_and_plot(tmp_path: Path, synthetic_atlas: Path) -> None:
    y = _responses(4)
    names = ["b", "a", "d", "c"]
    paths = [write_response(tmp_path / f"{n}.npz", y[i], 7, None) for i, n in enumerate(names)]
    stages.run_roi_matrix(
        paths, names, tmp_path / "group" / "stimulus_roi.tsv", atlas_dir=str(synthetic_atlas)
    )
    stages.run_rdm(
        paths,
        names,
        tmp_path / "group" / "rdm.tsv",
        tmp_path / "group" / "rdm.png",
        atlas_dir=str(synthetic_atlas),
        rois=["V*"],
        space="vertices",
    )
    matrix = pd.read_csv(tmp_path / "group" / "stimulus_roi.tsv", sep="\t")
    assert matrix["stimulus"].tolist() == names and (matrix["n_trs"] == 7).all()
    rdm = pd.read_csv(tmp_path / "group" / "rdm.tsv", sep="\t").set_index("stimulus")
    assert list(rdm.columns) == names and rdm.shape == (4, 4)
    expected = correlation_distance(rdm_features(y, load_hcp_mmp1(synthetic_atlas), ["V*"]))
    np.testing.assert_allclose(rdm.to_numpy(), expected, atol=1e-6)
    assert (tmp_path / "group" / "rdm.png").stat().st_size > 5_000

"""Group tables over all stimuli: stimulus x ROI matrix and representational dissimilarity.

Both read the per-stimulus response maps (:mod:`tribe_core.insilico.responses`) and
nothing about conditions, so relabelling a stimulus never reruns them.

- ``stimulus_roi.tsv`` (+ ``.parquet``): one row per stimulus (``stimulus``,
  ``n_trs``), one column per HCP-MMP1 ROI (``L_*``, ``R_*``, bilateral), the ROI mean
  of the stimulus's response map.
- ``rdm.tsv`` (+ ``.parquet``), ``rdm.png``: stimulus x stimulus correlation distance
  ``1 - Pearson r`` between response maps, over all vertices, over the vertices of a
  chosen ROI set, or over the ROI means of that set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tribe_core.errors import TribeInputError
from tribe_core.products import N_VERTICES
from tribe_core.products.atlas import Parcellation

RDM_SPACES = ("vertices", "roi_means")


def stimulus_roi_matrix(
    names: Sequence[str],
    responses: np.ndarray,
    atlas: Parcellation,
    *,
    n_trs: np.ndarray | None = None,
    hemi: str = "both",
) -> pd.DataFrame:
    """ROI means of each stimulus's response map.

    Parameters
    ----------
    names
        Stimulus of each row.
    responses
        ``[n_stimuli, 20484]``.
    atlas
        HCP-MMP1 (or any :class:`Parcellation`).
    n_trs
        TRs averaged per stimulus (a column when given).
    hemi
        ROI columns: ``both`` (``L_*``, ``R_*``, bilateral), ``left``, ``right``,
        ``bilateral``.

    Returns
    -------
    pandas.DataFrame
        ``stimulus`` (and ``n_trs``), then one float column per ROI.
    """
    from tribe_core.products.rois import roi_timeseries

    means = roi_timeseries(np.asarray(responses), atlas, hemi).reset_index(drop=True)
    lead = pd.DataFrame({"stimulus": list(names)})
    if n_trs is not None:
        lead["n_trs"] = np.asarray(n_trs)
    return pd.concat([lead, means], axis=1)


def rdm_features(
    responses: np.ndarray,
    atlas: Parcellation | None = None,
    rois: Sequence[str] | None = None,
    space: str = "vertices",
) -> np.ndarray:
    """The feature vectors an RDM compares: ``[n_stimuli, n_features]``.

    ``rois`` empty: every vertex. Otherwise the vertices of those ROIs (names or
    wildcards, :func:`tribe_core.products.rois.match_rois`), or with
    ``space="roi_means"`` one value per matched ROI column.
    """
    from tribe_core.products.rois import match_rois, roi_timeseries, selection_mask

    y = np.asarray(responses, dtype=np.float64)
    if space not in RDM_SPACES:
        raise TribeInputError(f"RDM space must be one of {RDM_SPACES}, got {space!r}")
    if y.ndim != 2 or y.shape[1] != N_VERTICES:
        raise TribeInputError(f"responses must be [n_stimuli, {N_VERTICES}], got {y.shape}")
    if not rois:
        if space == "roi_means":
            if atlas is None:
                raise TribeInputError("an RDM over ROI means needs the HCP-MMP1 atlas")
            return roi_timeseries(y, atlas, "both").to_numpy()
        return y
    if atlas is None:
        raise TribeInputError(f"an RDM over ROIs {list(rois)} needs the HCP-MMP1 atlas")
    if space == "roi_means":
        columns = match_rois(rois, atlas)
        return roi_timeseries(y, atlas, "both")[columns].to_numpy()
    return y[:, selection_mask(atlas, rois)]


def correlation_distance(features: np.ndarray) -> np.ndarray:
    """``1 - Pearson r`` between the rows of ``features [n, d]``: ``[n, n]``, in ``[0, 2]``.

    A constant row has no correlation: its distances are NaN (0 to itself).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise TribeInputError(f"need [n_stimuli, >= 2 features] to correlate, got {x.shape}")
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = x / norm[:, None]
    r = np.clip(z @ z.T, -1.0, 1.0)
    rdm = 1.0 - r
    np.fill_diagonal(rdm, 0.0)
    return rdm


def rdm_table(names: Sequence[str], rdm: np.ndarray) -> pd.DataFrame:
    """Square RDM as a table: ``stimulus`` column, then one column per stimulus."""
    table = pd.DataFrame(np.asarray(rdm), columns=list(names))
    table.insert(0, "stimulus", list(names))
    return table


def plot_rdm(names: Sequence[str], rdm: np.ndarray, path: Path, *, title: str = "") -> Path:
    """Heat map of an RDM (viridis, 0 to its largest finite value, one labelled row per
    stimulus) as PNG; the full 0..2 range would hide the structure of similar responses."""
    import matplotlib.pyplot as plt

    from tribe_core.products.plots import save_figure

    n = len(names)
    size = min(max(4.0, 0.22 * n + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    values = np.asarray(rdm, dtype=np.float64)
    finite = values[np.isfinite(values)]
    vmax = float(min(max(finite.max(), 1e-6), 2.0)) if finite.size else 2.0
    image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=vmax)
    if n <= 120:
        ax.set_xticks(range(n), list(names), rotation=90, fontsize=7)
        ax.set_yticks(range(n), list(names), fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="1 - Pearson r")
    ax.set_title(title or f"Representational dissimilarity ({n} stimuli)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, Path(path))

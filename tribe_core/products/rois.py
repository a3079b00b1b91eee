"""HCP-MMP1 ROI tables: per-TR and time-averaged ROI means, top-k summary, selections.

Column names: ``L_<area>`` / ``R_<area>`` for one hemisphere, ``<area>`` for the
bilateral ROI. A bilateral mean is the mean over all vertices of the area in both
hemispheres (vertex-weighted), not the mean of the two hemisphere means.

Selections follow BERG: ROI names or shell wildcards (``V*``, ``*STS*``, ``L_V1``),
matched case-sensitively against area names (both hemispheres) and
hemisphere-prefixed names, and/or a ``[20484]`` boolean vertex mask; the
selected vertices are the union of both.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import atomic_path
from tribe_core.products import N_VERTICES, N_VERTICES_PER_HEMI
from tribe_core.products.atlas import Parcellation, load_hcp_mmp1
from tribe_core.products.meshes import as_predictions

HEMI_CHOICES = ("both", "left", "right", "bilateral")
SELECTION_COLUMN = "selection"


_TR_BLOCK = 512


def _as_parcellation(atlas: Parcellation | Path | str | None) -> Parcellation:
    return atlas if isinstance(atlas, Parcellation) else load_hcp_mmp1(atlas)


def roi_columns(atlas: Parcellation, hemi: str = "both") -> list[tuple[str, str, str]]:
    """``(column, area, hemisphere)`` triples in output order.

    ``hemi``: ``left`` (``L_*``), ``right`` (``R_*``), ``bilateral`` (``<area>``) or
    ``both`` (the three blocks: left, right, bilateral).
    """
    if hemi not in HEMI_CHOICES:
        raise TribeInputError(f"hemi must be one of {HEMI_CHOICES}, got {hemi!r}")
    blocks = {
        "left": [(f"L_{a}", a, "left") for a in atlas.areas],
        "right": [(f"R_{a}", a, "right") for a in atlas.areas],
        "bilateral": [(a, a, "both") for a in atlas.areas],
    }
    if hemi == "both":
        return blocks["left"] + blocks["right"] + blocks["bilateral"]
    return blocks[hemi]


def match_rois(patterns: Sequence[str], atlas: Parcellation) -> list[str]:
    """Expand ROI names/wildcards into column names (``L_V1``, ``V1``...), in atlas order.

    A pattern matching an area name (``V1``, ``V*``) selects the bilateral column; a
    pattern with a hemisphere prefix (``L_V*``) selects hemisphere columns.

    Raises
    ------
    TribeInputError
        A pattern matches nothing (the message lists a few valid names).
    """
    columns = [c for c, _, _ in roi_columns(atlas, "both")]
    selected: set[str] = set()
    for pattern in patterns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise TribeInputError(
                f"ROI pattern {pattern!r} matches no HCP-MMP1 area (examples: V1, STSdp, "
                f"L_A1, 'V*', '*STS*'; {len(atlas.areas)} areas in {atlas.source})"
            )
        selected.update(hits)
    return [c for c in columns if c in selected]


def _column_vertices(atlas: Parcellation, column: str) -> np.ndarray:
    if column.startswith(("L_", "R_")) and column[2:] in atlas.areas:
        return atlas.vertices(column[2:], "left" if column[0] == "L" else "right")
    return atlas.vertices(column, "both")


def selection_mask(
    atlas: Parcellation | Path | str | None,
    rois: Sequence[str] | None = None,
    vertex_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean ``[20484]`` union of the vertices of ``rois`` (patterns) and ``vertex_mask``."""
    mask = np.zeros(N_VERTICES, dtype=bool)
    if vertex_mask is not None:
        vm = np.asarray(vertex_mask)
        if vm.shape != (N_VERTICES,):
            raise TribeInputError(
                f"vertex mask must have shape [{N_VERTICES}] (fsaverage5, left hemisphere "
                f"first), got {vm.shape}"
            )
        mask |= vm.astype(bool)
    if rois:
        parc = _as_parcellation(atlas)
        for column in match_rois(rois, parc):
            mask[_column_vertices(parc, column)] = True
    return mask


def select_vertices(
    predictions: np.ndarray,
    atlas_dir: Parcellation | Path | str | None,
    *,
    rois: Sequence[str] | None = None,
    vertex_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Subset predictions to the union of ROI vertices and a vertex mask.

    Returns
    -------
    values
        ``[n_trs, n_selected]`` float32.
    vertex_indices
        ``[n_selected]`` indices into the 20,484 vertices (ascending).
    """
    preds = as_predictions(predictions)
    mask = selection_mask(atlas_dir if rois else None, rois, vertex_mask)
    idx = np.flatnonzero(mask)
    return preds[:, idx], idx


def _averaging_matrix(groups: list[np.ndarray]) -> sp.csr_matrix:
    """``[n_groups, 20484]`` sparse matrix whose rows average the vertices of each group."""
    rows = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    cols = np.concatenate(groups)
    vals = np.concatenate([np.full(len(g), 1.0 / max(len(g), 1)) for g in groups])
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(groups), N_VERTICES))


def roi_timeseries(
    predictions: np.ndarray,
    atlas_dir: Parcellation | Path | str | None,
    hemi: str = "both",
    *,
    rois: Sequence[str] | None = None,
    vertex_mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per-TR ROI means.

    Parameters
    ----------
    predictions
        ``[n_trs, 20484]`` (left hemisphere first).
    atlas_dir
        HCP-MMP1 folder (see :func:`tribe_core.products.atlas.load_hcp_mmp1`), or a
        loaded :class:`Parcellation`.
    hemi
        ``both`` (``L_*``, ``R_*`` and bilateral columns), ``left``, ``right`` or
        ``bilateral``.
    rois
        Keep only these ROIs (names or wildcards, see :func:`match_rois`).
    vertex_mask
        ``[20484]`` bool; adds a ``selection`` column, the mean over the union of
        the mask and the ``rois`` vertices.

    Returns
    -------
    pandas.DataFrame
        ``[n_trs, n_rois]`` float64, index ``tr`` (0-based row of ``predictions``).
    """
    preds = as_predictions(predictions)
    parc = _as_parcellation(atlas_dir)
    columns = [c for c, _, _ in roi_columns(parc, hemi)]
    if rois:
        keep = set(match_rois(rois, parc))
        columns = [c for c in columns if c in keep]
        if not columns:
            raise TribeInputError(f"ROIs {list(rois)} select no column with hemi={hemi!r}")
    groups = [_column_vertices(parc, c) for c in columns]
    if vertex_mask is not None:
        groups.append(np.flatnonzero(selection_mask(parc, rois, vertex_mask)))
        columns.append(SELECTION_COLUMN)
        if groups[-1].size == 0:
            raise TribeInputError("the vertex mask (and ROIs) select no vertex")
    average = _averaging_matrix(groups)
    # float64 sums a block of TRs at a time: memory stays at one block beyond the input.
    means = np.concatenate(
        [
            np.asarray(average @ preds[a : a + _TR_BLOCK].T.astype(np.float64)).T
            for a in range(0, preds.shape[0], _TR_BLOCK)
        ]
    )
    frame = pd.DataFrame(means, columns=columns)
    frame.index.name = "tr"
    frame.attrs["n_vertices"] = {c: int(g.size) for c, g in zip(columns, groups, strict=True)}
    return frame


def roi_mean_table(timeseries: pd.DataFrame, atlas: Parcellation) -> pd.DataFrame:
    """Time-averaged statistics per ROI column of :func:`roi_timeseries`.

    Returns one row per ROI: ``roi``, ``area``, ``hemisphere``, ``n_vertices``,
    ``mean``, ``std``, ``min``, ``max``, ``peak_tr`` (row of the maximum).
    """
    info = {c: (a, h) for c, a, h in roi_columns(atlas, "both")}
    counts = timeseries.attrs.get("n_vertices", {})
    rows = []
    for col in timeseries.columns:
        values = timeseries[col].to_numpy()
        area, hemisphere = info.get(col, ("", "selection"))
        n_vert = counts.get(col, _column_vertices(atlas, col).size if col in info else -1)
        rows.append(
            {
                "roi": col,
                "area": area,
                "hemisphere": hemisphere,
                "n_vertices": n_vert,
                "mean": float(values.mean()),
                "std": float(values.std()),
                "min": float(values.min()),
                "max": float(values.max()),
                "peak_tr": int(timeseries.index[int(np.argmax(values))]),
            }
        )
    return pd.DataFrame(rows)


def roi_summary(
    predictions: np.ndarray,
    atlas_dir: Parcellation | Path | str | None,
    top_k: int = 10,
    *,
    hemi: str = "bilateral",
    by: str = "mean",
) -> pd.DataFrame:
    """Top-k ROIs ranked by their time-averaged response.

    Parameters
    ----------
    hemi
        Which ROI columns compete (default bilateral areas; ``both`` ranks L/R/bilateral).
    by
        ``mean`` (highest mean first) or ``abs`` (largest ``|mean|`` first).

    Returns
    -------
    pandas.DataFrame
        ``top_k`` rows: ``rank`` (1-based), then the columns of :func:`roi_mean_table`.
    """
    if by not in ("mean", "abs"):
        raise TribeInputError(f"by must be 'mean' or 'abs', got {by!r}")
    parc = _as_parcellation(atlas_dir)
    table = roi_mean_table(roi_timeseries(predictions, parc, hemi), parc)
    key = table["mean"].abs() if by == "abs" else table["mean"]
    order = np.argsort(-key.to_numpy(), kind="stable")[: max(int(top_k), 0)]
    top = table.iloc[order].reset_index(drop=True)
    top.insert(0, "rank", np.arange(1, len(top) + 1))
    return top


def align_trs(trs: pd.DataFrame | None, n_trs: int) -> pd.DataFrame:
    """The TR table rows matching the prediction rows (kept TRs only)."""
    if trs is None:
        return pd.DataFrame({"tr_start_s": np.arange(n_trs, dtype=float)})
    if len(trs) != n_trs and "kept" in trs.columns and int(trs["kept"].sum()) == n_trs:
        trs = trs[trs["kept"].astype(bool)]
    if len(trs) != n_trs or "tr_start_s" not in trs.columns:
        raise TribeInputError(
            f"TR table has {len(trs)} rows (columns {list(trs.columns)}) but predictions "
            f"have {n_trs} TRs; expected a 'tr_start_s' column with one row per kept TR"
        )
    return trs.reset_index(drop=True)


def write_table(frame: pd.DataFrame, path: Path) -> list[Path]:
    """Write ``frame`` as TSV at ``path`` (and a Parquet twin if pyarrow is installed)."""
    written = []
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    written.append(path)
    if importlib.util.find_spec("pyarrow") is not None:
        parquet = path.with_suffix(".parquet")
        with atomic_path(parquet) as tmp:
            frame.to_parquet(tmp, index=False)
        written.append(parquet)
    return written


def write_roi_tables(
    predictions: np.ndarray,
    trs: pd.DataFrame | None,
    atlas_dir: Parcellation | Path | str | None,
    out_dir: Path,
    *,
    rois: list[str] | None = None,
    top_k: int = 10,
    vertex_mask: np.ndarray | None = None,
    hemi: str = "both",
) -> list[Path]:
    """Write ``roi_timeseries.tsv``, ``roi_mean.tsv`` and ``roi_top.tsv`` (+ Parquet).

    Parameters
    ----------
    predictions
        ``[n_trs, 20484]``.
    trs
        TR table with ``tr_start_s`` (one row per prediction row, or all TRs with a
        ``kept`` column); its ``tr_start_s`` (and ``segment``) lead the time series.
    rois, vertex_mask
        Output subsetting (see :func:`roi_timeseries`); ``roi_top.tsv`` always ranks
        all bilateral areas.

    Returns
    -------
    list of Path
        Files written (Parquet twins only when pyarrow is installed).
    """
    preds = as_predictions(predictions)
    parc = _as_parcellation(atlas_dir)
    out_dir = Path(out_dir)
    series = roi_timeseries(preds, parc, hemi, rois=rois, vertex_mask=vertex_mask)
    trs_kept = align_trs(trs, preds.shape[0])
    lead = pd.DataFrame({"tr": np.arange(preds.shape[0])})
    for col in ("tr_start_s", "response_time_s", "segment"):
        if col in trs_kept.columns:
            lead[col] = trs_kept[col].to_numpy()
    timeseries_table = pd.concat([lead, series.reset_index(drop=True)], axis=1)
    mean_table = roi_mean_table(series, parc)
    mean_table["peak_time_s"] = trs_kept["tr_start_s"].to_numpy()[mean_table["peak_tr"]]
    top = roi_summary(preds, parc, top_k=top_k)
    top["peak_time_s"] = trs_kept["tr_start_s"].to_numpy()[top["peak_tr"]]
    written = []
    written += write_table(timeseries_table, out_dir / "roi_timeseries.tsv")
    written += write_table(mean_table, out_dir / "roi_mean.tsv")
    written += write_table(top, out_dir / "roi_top.tsv")
    return written


__all__ = [
    "N_VERTICES_PER_HEMI",
    "align_trs",
    "match_rois",
    "roi_columns",
    "roi_mean_table",
    "roi_summary",
    "roi_timeseries",
    "select_vertices",
    "selection_mask",
    "write_roi_tables",
]

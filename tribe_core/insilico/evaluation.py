"""Predictions of a stimulus against a lab's BOLD, with a split-half noise ceiling.

Each occurrence of the stimulus (a run and an onset, :mod:`tribe_core.insilico.fmriprep`)
is put on the prediction's clock: prediction row ``t`` is the BOLD expected at
``onset + tr_start_s[t] + hemodynamic_offset_s`` in the run, where the run's samples
are at ``StartTime + i * RepetitionTime``; the BOLD is linearly interpolated there, so
the lab's TR need not equal the prediction's. Rows the run does not cover are dropped
(in every occurrence alike). Runs are linearly detrended per vertex first (optional).

Scores, per vertex and per HCP-MMP1 ROI (the ROI-mean time courses):

- ``r``: Pearson r over time between the prediction and the mean of all occurrences.
- ``split_half_r``: r between the means of two halves of the occurrences, averaged
  over up to 20 balanced splits (all of them when there are fewer; seeded otherwise).
- ``reliability``: Spearman–Brown ``2 r_half / (1 + r_half)``, the reliability of the
  mean of all occurrences.
- ``noise_ceiling``: ``sqrt(max(reliability, 0))``, the highest r a noise-free model
  can reach against that mean; ``r_over_ceiling = r / noise_ceiling`` (NaN where the
  ceiling is 0). Both need at least two occurrences (repeated runs, subjects or
  presentations of the stimulus).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tribe_core.errors import TribeInputError
from tribe_core.products import N_VERTICES, N_VERTICES_PER_HEMI
from tribe_core.products.analyses import pearson_r_per_vertex
from tribe_core.products.atlas import Parcellation

log = logging.getLogger(__name__)

MAX_SPLITS = 20


def align_to_prediction(
    bold: np.ndarray,
    *,
    tr_s: float,
    start_time_s: float,
    onset_s: float,
    response_times_s: np.ndarray,
) -> np.ndarray:
    """BOLD of one run at the prediction's response times (linear interpolation).

    Parameters
    ----------
    bold
        ``[n_samples, n_features]`` run time series.
    tr_s, start_time_s
        Sample ``i`` is at ``start_time_s + i * tr_s`` seconds from the run's start.
    onset_s
        Stimulus onset in the run (seconds).
    response_times_s
        ``[n_rows]`` prediction rows' response times from the stimulus onset
        (``tr_start_s + hemodynamic_offset_s``).

    Returns
    -------
    numpy.ndarray
        ``[n_rows, n_features]`` float64; NaN rows outside the run.
    """
    data = np.asarray(bold, dtype=np.float64)
    position = (onset_s + np.asarray(response_times_s, dtype=np.float64) - start_time_s) / tr_s
    inside = (position >= 0) & (position <= data.shape[0] - 1)
    out = np.full((position.size, data.shape[1]), np.nan)
    if inside.any():
        pos = position[inside]
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, data.shape[0] - 1)
        w = (pos - lo)[:, None]
        out[inside] = data[lo] * (1.0 - w) + data[hi] * w
    return out


def _splits(k: int, seed: int) -> list[np.ndarray]:
    """Balanced half splits of ``k`` occurrences (a mask of the first half each)."""
    half = k // 2
    n_distinct = math.comb(k, half) // (2 if k % 2 == 0 else 1)
    if n_distinct <= MAX_SPLITS:
        masks, seen = [], set()
        for subset in itertools.combinations(range(k), half):
            complement = tuple(i for i in range(k) if i not in subset)
            if complement in seen:  # k even: {A, B} and {B, A} are one split
                continue
            seen.add(subset)
            mask = np.zeros(k, dtype=bool)
            mask[list(subset)] = True
            masks.append(mask)
        return masks
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(MAX_SPLITS):
        mask = np.zeros(k, dtype=bool)
        mask[rng.choice(k, size=half, replace=False)] = True
        masks.append(mask)
    return masks


def split_half_reliability(
    occurrences: np.ndarray, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split-half r and its Spearman–Brown reliability per feature.

    Parameters
    ----------
    occurrences
        ``[k, n_rows, n_features]`` aligned responses, ``k >= 2``.

    Returns
    -------
    split_half_r, reliability
        ``[n_features]`` each (NaN where a half is constant).
    """
    occ = np.asarray(occurrences, dtype=np.float64)
    if occ.ndim != 3 or occ.shape[0] < 2:
        raise TribeInputError(f"need [k >= 2, n_rows, n_features] occurrences, got {occ.shape}")
    rs = [
        pearson_r_per_vertex(occ[mask].mean(axis=0), occ[~mask].mean(axis=0))
        for mask in _splits(occ.shape[0], seed)
    ]
    with np.errstate(invalid="ignore"):
        r_half = np.nanmean(np.stack(rs), axis=0) if len(rs) > 1 else rs[0]
        reliability = 2.0 * r_half / (1.0 + r_half)
    return r_half, reliability


def _scores(prediction: np.ndarray, occ: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """r, split-half r, reliability, ceiling and r / ceiling: ``[n_features]`` each."""
    with np.errstate(invalid="ignore", all="ignore"):
        r = pearson_r_per_vertex(prediction, occ.mean(axis=0))
        if occ.shape[0] >= 2:
            r_half, reliability = split_half_reliability(occ, seed=seed)
            ceiling = np.sqrt(np.clip(reliability, 0.0, None))
            ratio = np.where(ceiling > 0, r / np.where(ceiling > 0, ceiling, 1.0), np.nan)
        else:
            r_half = reliability = ceiling = ratio = np.full(r.shape, np.nan)
    return {
        "r": r,
        "split_half_r": r_half,
        "reliability": reliability,
        "noise_ceiling": ceiling,
        "r_over_ceiling": ratio,
    }


@dataclass
class EvaluationResult:
    """Tables of :func:`evaluate_against_bold` (see the module docstring)."""

    vertices: pd.DataFrame
    runs: pd.DataFrame
    summary: pd.DataFrame
    rois: pd.DataFrame | None = None


def evaluate_against_bold(
    predictions: np.ndarray,
    aligned: Sequence[np.ndarray],
    *,
    occurrences: Sequence[Mapping[str, Any]] | None = None,
    atlas: Parcellation | None = None,
    seed: int = 0,
    hemodynamic_offset_s: float | None = None,
) -> EvaluationResult:
    """Score predictions against the aligned BOLD of each occurrence of the stimulus.

    Parameters
    ----------
    predictions
        ``[n_rows, 20484]`` prediction rows (kept TRs).
    aligned
        One ``[n_rows, 20484]`` array per occurrence (:func:`align_to_prediction`),
        NaN rows where the run does not cover the prediction.
    occurrences
        One dict per occurrence (``label``, ``subject``, ``onset_s``, ``tr_s``...) for the
        runs table.
    atlas
        HCP-MMP1 for the ROI table.
    seed
        Seed of the random half splits (when there are more than 20).
    hemodynamic_offset_s
        Recorded in the summary.

    Returns
    -------
    EvaluationResult
    """
    pred = np.asarray(predictions, dtype=np.float64)
    if not aligned:
        raise TribeInputError("no occurrence of the stimulus to evaluate against")
    occ = np.stack([np.asarray(a, dtype=np.float64) for a in aligned])
    if pred.ndim != 2 or pred.shape[1] != N_VERTICES or occ.shape[1:] != pred.shape:
        raise TribeInputError(
            f"predictions {pred.shape} and aligned BOLD {occ.shape[1:]} must both be "
            f"[n_rows, {N_VERTICES}]"
        )
    valid = ~np.isnan(occ).any(axis=(0, 2))
    if valid.sum() < 3:
        raise TribeInputError(
            f"only {int(valid.sum())} prediction rows fall inside every run showing the "
            "stimulus (need 3); check the onsets, the runs' length and the TR"
        )
    pred, occ = pred[valid], occ[:, valid]
    scores = _scores(pred, occ, seed)
    vertex = np.arange(N_VERTICES)
    vertices = pd.DataFrame(
        {"vertex": vertex, "hemisphere": np.where(vertex < N_VERTICES_PER_HEMI, "left", "right")}
    )
    for name, values in scores.items():
        vertices[name] = values
    info = [dict(o) for o in occurrences] if occurrences else [{} for _ in aligned]
    runs = pd.DataFrame(
        [
            {
                "label": o.get("label", ""),
                "subject": o.get("subject", ""),
                "onset_s": o.get("onset_s", np.nan),
                "tr_s": o.get("tr_s", np.nan),
                "file": o.get("left", ""),
                "mean_r": float(np.nanmean(pearson_r_per_vertex(pred, occ[i]))),
            }
            for i, o in enumerate(info)
        ]
    )
    rois = None
    if atlas is not None:
        from tribe_core.products.rois import roi_columns, roi_timeseries

        roi_pred = roi_timeseries(pred, atlas, "both")
        roi_occ = np.stack([roi_timeseries(o, atlas, "both").to_numpy() for o in occ])
        roi_info = {c: (a, h) for c, a, h in roi_columns(atlas, "both")}
        columns = list(roi_pred.columns)
        rois = pd.DataFrame(
            {
                "roi": columns,
                "area": [roi_info[c][0] for c in columns],
                "hemisphere": [roi_info[c][1] for c in columns],
                "n_vertices": [roi_pred.attrs["n_vertices"][c] for c in columns],
                **_scores(roi_pred.to_numpy(), roi_occ, seed),
            }
        )
    r = scores["r"]
    finite_ratio = scores["r_over_ceiling"][np.isfinite(scores["r_over_ceiling"])]
    rows = [
        ("n_occurrences", float(len(occ))),
        ("n_subjects", float(len({o.get("subject", "") for o in info}))),
        ("n_rows", float(valid.sum())),
        ("n_rows_dropped", float((~valid).sum())),
        ("hemodynamic_offset_s", np.nan if hemodynamic_offset_s is None else hemodynamic_offset_s),
        ("mean_r", float(np.nanmean(r)) if np.isfinite(r).any() else np.nan),
        ("median_r", float(np.nanmedian(r)) if np.isfinite(r).any() else np.nan),
        ("mean_reliability", _nanmean(scores["reliability"])),
        ("mean_noise_ceiling", _nanmean(scores["noise_ceiling"])),
        ("median_r_over_ceiling", float(np.median(finite_ratio)) if finite_ratio.size else np.nan),
    ]
    summary = pd.DataFrame(rows, columns=["metric", "value"])
    return EvaluationResult(vertices=vertices, runs=runs, summary=summary, rois=rois)


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def evaluate_occurrences(
    predictions: np.ndarray,
    response_times_s: np.ndarray,
    occurrences: Sequence[Mapping[str, Any]],
    *,
    atlas: Parcellation | None = None,
    detrend: bool = True,
    seed: int = 0,
    hemodynamic_offset_s: float | None = None,
) -> EvaluationResult:
    """Load each occurrence's run, align it, and score (:func:`evaluate_against_bold`).

    Parameters
    ----------
    predictions
        ``[n_rows, 20484]`` kept prediction rows.
    response_times_s
        ``[n_rows]`` their response times from the stimulus onset.
    occurrences
        Dicts with ``left``, ``right`` (GIFTI pair), ``tr_s``, ``start_time_s``,
        ``onset_s`` (:meth:`tribe_core.insilico.fmriprep.Occurrence.as_dict`).
    detrend
        Remove each run's linear trend per vertex before aligning.
    """
    from scipy.signal import detrend as linear_detrend

    from tribe_core.insilico.fmriprep import load_surface_bold

    runs: dict[tuple[str, str], np.ndarray] = {}
    aligned = []
    for occ in occurrences:
        key = (str(occ["left"]), str(occ["right"]))
        if key not in runs:
            bold = load_surface_bold(*key).astype(np.float64)
            if bold.shape[0] < 2:
                raise TribeInputError("BOLD run has fewer than 2 samples", path=key[0])
            runs[key] = linear_detrend(bold, axis=0) if detrend else bold
            log.info(
                "loaded %s: %d samples, TR %.3g s", Path(key[0]).name, bold.shape[0], occ["tr_s"]
            )
        aligned.append(
            align_to_prediction(
                runs[key],
                tr_s=float(occ["tr_s"]),
                start_time_s=float(occ.get("start_time_s", 0.0)),
                onset_s=float(occ["onset_s"]),
                response_times_s=response_times_s,
            )
        )
    return evaluate_against_bold(
        predictions,
        aligned,
        occurrences=occurrences,
        atlas=atlas,
        seed=seed,
        hemodynamic_offset_s=hemodynamic_offset_s,
    )


def write_evaluation(
    result: EvaluationResult, out_dir: str | Path, *, plot: bool = True
) -> list[Path]:
    """Write ``vertices.tsv``, ``rois.tsv``, ``runs.tsv``, ``summary.tsv`` (+ Parquet),
    GIFTI maps ``r``, ``noise_ceiling``, ``r_over_ceiling`` and, with ``plot``,
    ``r_and_ceiling.png`` and ``r_over_ceiling.png``."""
    from tribe_core.products.rois import write_table
    from tribe_core.products.volumes import write_gifti

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_table(result.vertices, out_dir / "vertices.tsv")
    written += write_table(result.runs, out_dir / "runs.tsv")
    written += write_table(result.summary, out_dir / "summary.tsv")
    if result.rois is not None:
        written += write_table(result.rois, out_dir / "rois.tsv")
    maps = {
        name: np.nan_to_num(result.vertices[name].to_numpy(np.float32))
        for name in ("r", "noise_ceiling", "r_over_ceiling")
    }
    for name, values in maps.items():
        written += write_gifti(values[None], out_dir, name=name)
    if plot:
        from tribe_core.products.plots import render_maps, save_figure

        fig = render_maps(
            np.stack([maps["r"], maps["noise_ceiling"]]),
            ["r", "noise ceiling"],
            title="Prediction vs lab BOLD: Pearson r and noise ceiling",
            colorbar_label="r",
            vmin=-1.0,
            vmax=1.0,
        )
        written.append(save_figure(fig, out_dir / "r_and_ceiling.png"))
        fig = render_maps(
            maps["r_over_ceiling"][None],
            ["r / ceiling"],
            title="Prediction vs lab BOLD: r / noise ceiling",
            colorbar_label="r / ceiling",
        )
        written.append(save_figure(fig, out_dir / "r_over_ceiling.png"))
    return written

"""Per-contrast products: vertex maps, ROI tables, GIFTI/NIfTI maps and thresholded plots.

A contrast compares the response maps (:mod:`tribe_core.insilico.responses`) of its
stimuli with :func:`tribe_core.insilico.stats.permutation_test`, once per vertex and
once per HCP-MMP1 ROI (the ROI mean of each stimulus's map; ``L_*``, ``R_*`` and
bilateral columns, FWE and FDR over all of them). Both tests draw the same seeded
relabellings.

Files of ``write_contrast`` (``<out>/``):

- ``vertices.tsv`` (+ ``.parquet``): ``vertex``, ``hemisphere``, ``mean_plus``,
  ``mean_minus``, ``effect``, ``t``, ``p_uncorrected``, ``p_fwe``, ``p_fdr``,
  ``p_corrected`` (the configured correction), ``significant`` (``p_corrected < alpha``).
- ``rois.tsv``: the same per ROI plus ``roi``, ``area``, ``n_vertices`` and
  ``fraction_significant`` (share of the ROI's vertices significant at vertex level);
  ``rois_top.tsv``: the ``top_k`` hemisphere ROIs (``L_*``, ``R_*``) ranked by the
  tested statistic. Only with an atlas.
- ``summary.tsv``: one row: the contrast, its conditions, the statistic, tail,
  correction, alpha, seed, stimuli (``n_stimuli``, ``n_plus``, ``n_minus``),
  ``n_permutations`` (``exhaustive``), the window, max/min t, significant vertices.
- ``null_max.tsv``: the maximum statistic of each permutation (the FWE null).
- ``effect.{lh,rh}.func.gii``, ``t.{lh,rh}.func.gii``, ``effect.nii.gz``, ``t.nii.gz``:
  maps on fsaverage5 and in MNI152 2 mm (cortical ribbon).
- ``effect.png`` (unthresholded) and ``t_thresholded.png`` (t where
  ``p_corrected < alpha``, nothing elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tribe_core.errors import TribeInputError
from tribe_core.insilico.stats import CORRECTIONS, PermutationResult, permutation_test
from tribe_core.products import N_VERTICES, N_VERTICES_PER_HEMI
from tribe_core.products.atlas import Parcellation


@dataclass(frozen=True)
class ContrastSettings:
    """How contrasts are tested (config section ``insilico``)."""

    n_permutations: int = 1000
    correction: str = "fwe"
    alpha: float = 0.05
    seed: int = 0
    statistic: str = "welch"
    tail: str = "two-sided"
    top_k: int = 10

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise TribeInputError(
                f"correction must be one of {CORRECTIONS}, got {self.correction!r}"
            )
        if not 0 < self.alpha < 1:
            raise TribeInputError(f"alpha must be in (0, 1), got {self.alpha}")


@dataclass
class ContrastResult:
    """Tables of one contrast (see the module docstring for their columns)."""

    vertices: pd.DataFrame
    summary: pd.DataFrame
    null_max: np.ndarray
    rois: pd.DataFrame | None = None
    top: pd.DataFrame | None = None


def _stat_columns(
    result: PermutationResult, y: np.ndarray, plus: np.ndarray, settings: ContrastSettings
) -> dict[str, np.ndarray]:
    minus = ~plus
    corrected = result.p_fwe if settings.correction == "fwe" else result.p_fdr
    return {
        "mean_plus": y[plus].mean(axis=0),
        "mean_minus": y[minus].mean(axis=0) if minus.any() else np.zeros(y.shape[1]),
        "effect": result.effect,
        "t": result.t,
        "p_uncorrected": result.p_uncorrected,
        "p_fwe": result.p_fwe,
        "p_fdr": result.p_fdr,
        "p_corrected": corrected,
        "significant": corrected < settings.alpha,
    }


def _ranking_key(t: np.ndarray, tail: str) -> np.ndarray:
    if tail == "two-sided":
        return np.abs(t)
    return t if tail == "greater" else -t


def _roi_tables(
    y: np.ndarray,
    groups: np.ndarray,
    cov: np.ndarray | None,
    atlas: Parcellation,
    vertex_significant: np.ndarray,
    settings: ContrastSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from tribe_core.products.rois import roi_columns, roi_timeseries

    means = roi_timeseries(y, atlas, "both")
    info = {c: (a, h) for c, a, h in roi_columns(atlas, "both")}
    result = permutation_test(
        means.to_numpy(),
        groups,
        covariates=cov,
        statistic=settings.statistic,
        tail=settings.tail,
        n_permutations=settings.n_permutations,
        seed=settings.seed,
    )
    # The ROI mean of the 0/1 significance map is the share of significant vertices.
    fractions = roi_timeseries(vertex_significant.astype(np.float32)[None], atlas, "both")
    table = pd.DataFrame(
        {
            "roi": list(means.columns),
            "area": [info[c][0] for c in means.columns],
            "hemisphere": [info[c][1] for c in means.columns],
            "n_vertices": [means.attrs["n_vertices"][c] for c in means.columns],
            **_stat_columns(result, means.to_numpy(), groups > 0, settings),
            "fraction_significant": fractions.to_numpy()[0],
        }
    )
    hemispheric = table[table["hemisphere"] != "both"]
    key = _ranking_key(hemispheric["t"].to_numpy(), settings.tail)
    order = np.argsort(-key, kind="stable")[: settings.top_k]
    top = hemispheric.iloc[order].reset_index(drop=True)
    top.insert(0, "rank", np.arange(1, len(top) + 1))
    return table, top


def run_contrast(
    names: Sequence[str],
    responses: np.ndarray,
    groups: Mapping[str, int],
    *,
    covariates: Mapping[str, Mapping[str, float]] | None = None,
    settings: ContrastSettings,
    atlas: Parcellation | None = None,
    contrast: str = "contrast",
    description: str = "",
    n_trs: np.ndarray | None = None,
    window_trs: Sequence[int] | None = None,
) -> ContrastResult:
    """Test one contrast on the stimuli's response maps.

    Parameters
    ----------
    names
        Stimulus of each row of ``responses``.
    responses
        ``[n_stimuli, 20484]`` response maps.
    groups
        Stimulus -> ``+1`` (plus) / ``-1`` (minus); stimuli not in it are left out.
    covariates
        Covariate -> {stimulus: value}: nuisance regressors.
    settings
        Permutations, correction, alpha, seed, statistic, tail, top-k.
    atlas
        HCP-MMP1 parcellation for the ROI tables (``None``: no ROI tables).
    contrast, description
        Name and ``plus - minus`` text for the summary.
    n_trs, window_trs
        TRs averaged per stimulus and the window, for the summary.

    Returns
    -------
    ContrastResult
    """
    names = list(names)
    y = np.asarray(responses)
    if y.shape != (len(names), N_VERTICES):
        raise TribeInputError(
            f"responses must be [n_stimuli={len(names)}, {N_VERTICES}], got {y.shape}"
        )
    missing = [s for s in groups if s not in names]
    if missing:
        raise TribeInputError(f"contrast {contrast!r}: no response for stimuli {missing}")
    rows = [names.index(s) for s in groups]
    y = y[rows].astype(np.float64)
    group = np.array([groups[s] for s in groups], dtype=np.int64)
    cov = None
    if covariates:
        cov = np.column_stack([[covariates[c][s] for s in groups] for c in covariates])
    result = permutation_test(
        y,
        group,
        covariates=cov,
        statistic=settings.statistic,
        tail=settings.tail,
        n_permutations=settings.n_permutations,
        seed=settings.seed,
    )
    vertex = np.arange(N_VERTICES)
    columns = _stat_columns(result, y, group > 0, settings)
    vertices = pd.DataFrame(
        {
            "vertex": vertex,
            "hemisphere": np.where(vertex < N_VERTICES_PER_HEMI, "left", "right"),
            **columns,
        }
    )
    rois = top = None
    if atlas is not None:
        rois, top = _roi_tables(y, group, cov, atlas, columns["significant"], settings)
    counts = np.asarray(n_trs)[rows] if n_trs is not None else None
    summary = pd.DataFrame(
        [
            {
                "contrast": contrast,
                "description": description,
                "statistic": result.statistic,
                "tail": settings.tail,
                "correction": settings.correction,
                "alpha": settings.alpha,
                "seed": settings.seed,
                "n_stimuli": len(group),
                "n_plus": int((group > 0).sum()),
                "n_minus": int((group < 0).sum()),
                "covariates": ",".join(covariates or {}),
                "n_permutations": result.n_permutations,
                "exhaustive": result.exhaustive,
                "df": result.df,
                "window_trs": "all" if not window_trs else f"{window_trs[0]}-{window_trs[1]}",
                "min_trs_averaged": int(counts.min()) if counts is not None else -1,
                "max_trs_averaged": int(counts.max()) if counts is not None else -1,
                "mean_effect": float(result.effect.mean()),
                "max_t": float(result.t.max()),
                "min_t": float(result.t.min()),
                "min_p_corrected": float(columns["p_corrected"].min()),
                "n_vertices_significant": int(columns["significant"].sum()),
                "top_roi": "" if top is None or top.empty else str(top["roi"].iloc[0]),
            }
        ]
    )
    return ContrastResult(
        vertices=vertices,
        summary=summary,
        null_max=result.null_max,
        rois=rois,
        top=top,
    )


def thresholded_map(vertices: pd.DataFrame, column: str = "t") -> np.ndarray:
    """``[20484]`` values of ``column`` where ``significant``, 0 elsewhere."""
    values = vertices[column].to_numpy(dtype=np.float32)
    return np.where(vertices["significant"].to_numpy(bool), values, 0.0).astype(np.float32)


def write_contrast(
    result: ContrastResult,
    out_dir: str | Path,
    *,
    nifti: bool = True,
    plot: bool = True,
    threads: int = 1,
) -> list[Path]:
    """Write the tables, maps and plots of a contrast into ``out_dir`` (module docstring)."""
    from tribe_core.products.rois import write_table
    from tribe_core.products.volumes import write_gifti, write_nifti

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_table(result.vertices, out_dir / "vertices.tsv")
    written += write_table(result.summary, out_dir / "summary.tsv")
    null = pd.DataFrame(
        {"permutation": np.arange(1, len(result.null_max) + 1), "max_statistic": result.null_max}
    )
    written += write_table(null, out_dir / "null_max.tsv")
    if result.rois is not None and result.top is not None:
        written += write_table(result.rois, out_dir / "rois.tsv")
        written += write_table(result.top, out_dir / "rois_top.tsv")
    maps = {
        "effect": result.vertices["effect"].to_numpy(np.float32),
        "t": result.vertices["t"].to_numpy(np.float32),
    }
    for name, values in maps.items():
        written += write_gifti(values[None], out_dir, name=name)
        if nifti:
            written.append(write_nifti(values[None], out_dir / f"{name}.nii.gz", threads=threads))
    if plot:
        written += _plot_contrast(result, out_dir)
    return written


def _plot_contrast(result: ContrastResult, out_dir: Path) -> list[Path]:
    from tribe_core.products.plots import render_maps, save_figure

    summary = result.summary.iloc[0]
    label = f"{summary['contrast']}: {summary['description']}".strip(": ")
    counts = (
        f"{summary['n_stimuli']} stimuli, {summary['n_permutations']} permutations, "
        f"{summary['statistic']} t, {summary['tail']}"
    )
    effect = result.vertices["effect"].to_numpy(np.float32)
    # The full range: a planted or real effect is the few per cent a percentile would clip.
    limit = float(np.abs(effect).max()) or 1.0
    fig = render_maps(
        effect[None],
        ["effect"],
        title=f"{label} (effect; {counts})",
        colorbar_label="effect",
        vmin=-limit,
        vmax=limit,
    )
    paths = [save_figure(fig, out_dir / "effect.png")]
    t_map = thresholded_map(result.vertices)
    significant = t_map != 0
    alpha, correction = summary["alpha"], str(summary["correction"]).upper()
    title = f"{label} (t, {correction} p < {alpha:g}; {counts})"
    if significant.any():
        # Limits from the surviving values: the robust percentile of a mostly-zero map is 0.
        threshold = float(np.abs(t_map[significant]).min()) * 0.999
        limit = float(np.abs(t_map[significant]).max())
        fig = render_maps(
            t_map[None],
            ["t"],
            title=title,
            colorbar_label="t",
            threshold=threshold,
            vmin=-limit,
            vmax=limit,
        )
    else:
        fig = render_maps(
            t_map[None],
            ["t"],
            title=f"{title}: no vertex survives",
            colorbar_label="t",
            threshold=np.inf,
            vmin=-1.0,
            vmax=1.0,
        )
    paths.append(save_figure(fig, out_dir / "t_thresholded.png"))
    return paths

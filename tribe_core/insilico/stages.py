"""One function per in-silico workflow rule (``rules/insilico.smk``), paths in, files out.

``workflow_scripts/insilico_*.py`` call exactly one of these. Directory outputs are
built under a temporary name and renamed when complete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import atomic_path

log = logging.getLogger(__name__)


def _atlas(atlas_dir: str | Path | None):  # noqa: ANN202 - Parcellation imported lazily
    if not atlas_dir:
        return None
    from tribe_core.products.atlas import load_hcp_mmp1

    return load_hcp_mmp1(atlas_dir)


def _responses(stimuli: Sequence[str], responses: Sequence[str | Path]) -> dict[str, Path]:
    if len(stimuli) != len(responses):
        raise TribeInputError(f"{len(stimuli)} stimulus names for {len(responses)} response files")
    return {s: Path(p) for s, p in zip(stimuli, responses, strict=True)}


def run_stimulus_response(
    predictions: str | Path,
    out: str | Path,
    *,
    window_trs: Sequence[int] | None,
    stimulus: str | None = None,
) -> None:
    """Per stimulus: the mean prediction over all kept TRs or a TR window (``response.npz``)."""
    from tribe_core.insilico.responses import window_mean, write_response
    from tribe_core.segments import read_predictions

    result = read_predictions(predictions)
    kept = result.trs[result.trs["kept"]]
    window = list(window_trs) if window_trs else None
    response, n_trs = window_mean(
        result.predictions, kept["tr_index"].to_numpy(), window, stimulus=stimulus
    )
    write_response(out, response, n_trs, window)
    log.info("response of %s: mean of %d TRs (window %s)", stimulus, n_trs, window or "all")


def run_contrast(
    responses: Sequence[str | Path],
    stimuli: Sequence[str],
    out_dir: str | Path,
    *,
    contrast: str,
    description: str,
    groups: Mapping[str, int],
    covariates: Mapping[str, Mapping[str, float]],
    atlas_dir: str | None,
    n_permutations: int,
    correction: str,
    alpha: float,
    seed: int,
    statistic: str,
    tail: str,
    top_k: int,
    window_trs: Sequence[int] | None,
    threads: int = 1,
) -> None:
    """Per contrast: effect and t maps, permutation p-values, ROI tables, GIFTI/NIfTI, plots."""
    from tribe_core.insilico.contrasts import ContrastSettings, run_contrast, write_contrast
    from tribe_core.insilico.responses import read_responses

    names, y, n_trs = read_responses(_responses(stimuli, responses))
    settings = ContrastSettings(
        n_permutations=int(n_permutations), correction=correction, alpha=float(alpha),
        seed=int(seed), statistic=statistic, tail=tail, top_k=int(top_k),
    )  # fmt: skip
    result = run_contrast(
        names,
        y,
        {s: int(g) for s, g in groups.items()},
        covariates={c: dict(v) for c, v in covariates.items()},
        settings=settings,
        atlas=_atlas(atlas_dir),
        contrast=contrast,
        description=description,
        n_trs=n_trs,
        window_trs=list(window_trs) if window_trs else None,
    )
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_contrast(result, tmp, threads=threads)
    row = result.summary.iloc[0]
    log.info(
        "contrast %s (%s): %d stimuli, %d permutations, %d significant vertices, top ROI %s",
        contrast, description, row["n_stimuli"], row["n_permutations"],
        row["n_vertices_significant"], row["top_roi"] or "-",
    )  # fmt: skip


def run_roi_matrix(
    responses: Sequence[str | Path], stimuli: Sequence[str], out: str | Path, *, atlas_dir: str
) -> None:
    """Group: the stimulus x ROI matrix (``stimulus_roi.tsv`` + Parquet)."""
    from tribe_core.insilico.group import stimulus_roi_matrix
    from tribe_core.insilico.responses import read_responses
    from tribe_core.products.rois import write_table

    names, y, n_trs = read_responses(_responses(stimuli, responses))
    atlas = _atlas(atlas_dir)
    if atlas is None:
        raise TribeInputError("the stimulus x ROI matrix needs the HCP-MMP1 atlas (atlas_dir)")
    write_table(stimulus_roi_matrix(names, y, atlas, n_trs=n_trs), Path(out))


def run_rdm(
    responses: Sequence[str | Path],
    stimuli: Sequence[str],
    out_tsv: str | Path,
    out_png: str | Path,
    *,
    atlas_dir: str | None,
    rois: Sequence[str],
    space: str,
) -> None:
    """Group: the stimulus x stimulus correlation-distance RDM (TSV + Parquet, PNG)."""
    from tribe_core.insilico.group import (
        correlation_distance,
        plot_rdm,
        rdm_features,
        rdm_table,
    )
    from tribe_core.insilico.responses import read_responses
    from tribe_core.products.rois import write_table

    names, y, _ = read_responses(_responses(stimuli, responses))
    features = rdm_features(y, _atlas(atlas_dir), list(rois), space)
    rdm = correlation_distance(features)
    if rois:
        over = f"{'ROI means' if space == 'roi_means' else 'vertices'} of {', '.join(rois)}"
    else:
        over = "all vertices" if space == "vertices" else "all ROI means"
    write_table(rdm_table(names, rdm), Path(out_tsv))
    title = f"RDM: 1 - r over {over} ({len(names)} stimuli)"
    plot_rdm(names, rdm, Path(out_png), title=title)
    log.info("RDM of %d stimuli over %d features (%s)", len(names), features.shape[1], over)


def run_fmriprep_evaluation(
    predictions: str | Path,
    out_dir: str | Path,
    *,
    occurrences: Sequence[Mapping[str, Any]],
    atlas_dir: str | None,
    hemodynamic_offset_s: float | None,
    detrend: bool,
    seed: int,
    stimulus: str | None = None,
) -> None:
    """Per stimulus: predictions against the lab's fMRIPrep BOLD (r, noise ceiling, maps)."""
    from tribe_core.insilico.evaluation import evaluate_occurrences, write_evaluation
    from tribe_core.segments import read_predictions

    if not occurrences:
        raise TribeInputError("no run of the lab's data shows this stimulus", stimulus=stimulus)
    result = read_predictions(predictions)
    kept = result.trs[result.trs["kept"]]
    offset = result.hemodynamic_offset_s if hemodynamic_offset_s is None else hemodynamic_offset_s
    response_times = kept["tr_start_s"].to_numpy() + float(offset)
    evaluation = evaluate_occurrences(
        result.predictions,
        response_times,
        occurrences,
        atlas=_atlas(atlas_dir),
        detrend=detrend,
        seed=seed,
        hemodynamic_offset_s=float(offset),
    )
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_evaluation(evaluation, tmp)
    summary = evaluation.summary.set_index("metric")["value"]
    log.info(
        "%s vs lab BOLD: %d occurrences, mean r %.3f, mean noise ceiling %.3f",
        stimulus, int(summary["n_occurrences"]), summary["mean_r"], summary["mean_noise_ceiling"],
    )  # fmt: skip

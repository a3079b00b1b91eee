"""Stage 5 (``rules/products.smk``): ROI tables, volumes and surfaces, plots, the report,
contribution maps and the evaluation against real fMRI, from ``predictions.zarr``.

One function per rule, from input paths to output paths (see :mod:`tribe_core.stages`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from tribe_core.encoder.stages import PredictSettings, stimulus_predictor
from tribe_core.errors import TribeInputError
from tribe_core.events.annotate import read_events_tsv
from tribe_core.io.atomic import atomic_path
from tribe_core.products.analyses import (
    ablation_contributions,
    write_contribution_maps,
    write_evaluation,
)
from tribe_core.products.report import write_report
from tribe_core.products.rois import align_trs, write_roi_tables
from tribe_core.products.volumes import write_gifti, write_nifti
from tribe_core.segments import read_predictions

log = logging.getLogger(__name__)


def run_roi_table(
    predictions: str | Path,
    out_dir: str | Path,
    *,
    atlas_dir: str | None,
    rois: list[str] | None,
    top_k: int,
) -> list[Path]:
    """Stage 5: HCP-MMP1 ROI tables (per TR, time-averaged, top-k)."""
    result = read_predictions(predictions)
    return write_roi_tables(
        result.predictions,
        result.trs,
        Path(atlas_dir) if atlas_dir else None,
        Path(out_dir),
        rois=list(rois) if rois else None,
        top_k=top_k,
    )


def run_volumes(
    predictions: str | Path,
    nifti_out: str | Path,
    gifti_dir: str | Path,
    *,
    smoothing_fwhm_mm: float | None,
    threads: int = 1,
) -> None:
    """Stage 5: NIfTI (MNI152 2 mm, built and compressed by ``threads`` threads) and GIFTI."""
    result = read_predictions(predictions)
    write_nifti(
        result.predictions, Path(nifti_out), smoothing_fwhm_mm=smoothing_fwhm_mm, threads=threads
    )
    write_gifti(result.predictions, Path(gifti_dir))


def run_plots(
    predictions: str | Path,
    out_dir: str | Path,
    *,
    trs: list[int],
    views: list[str],
    cmap: str,
    movie: bool,
    threads: int = 1,
) -> None:
    """Stage 5: brain maps on fsaverage5 (and optionally a movie in stimulus time, one
    frame per TR held for one TR, drawn by ``threads`` processes)."""
    # matplotlib (a third of a second) only for the job that draws
    from tribe_core.products.plots import make_movie, plot_brain_maps

    result = read_predictions(predictions)
    n_rows = result.predictions.shape[0]
    tr_start_s = align_trs(result.trs, n_rows)["tr_start_s"].tolist()
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        plot_brain_maps(
            result.predictions,
            tmp,
            trs=[t for t in trs if t < n_rows] or None,
            views=tuple(views),
            cmap=cmap,
            tr_start_s=tr_start_s,
        )
        if movie:
            make_movie(
                result.predictions,
                tmp / "movie.mp4",
                tr_s=result.tr_s,
                tr_start_s=tr_start_s,
                n_trs=result.n_trs,
                workers=threads,
            )


def run_report(
    stimulus: str,
    predictions: str | Path,
    events: str | Path,
    plots_dir: str | Path,
    html_out: str | Path,
    media_path: str | Path | None,
) -> None:
    """Stage 5: the stimulus-aligned HTML report."""
    result = read_predictions(predictions)
    plot_paths = sorted(Path(plots_dir).glob("*.png"))
    write_report(
        stimulus,
        result.predictions,
        result.trs,
        read_events_tsv(Path(events)),
        plot_paths,
        Path(html_out),
        media_path=Path(media_path) if media_path else None,
    )


def run_contributions(
    feature_stores: Mapping[str, str | Path],
    events: str | Path,
    media: str | Path,
    out_dir: str | Path,
    settings: PredictSettings,
    *,
    stimulus: str | None = None,
) -> None:
    """Stage 5: per-modality contribution maps (prediction minus prediction without it).

    One map per modality the stimulus has (a modality it lacks is already
    zero-filled in the prediction, so it has no map). Without its only modality
    a stimulus is predicted from all-zero-filled inputs, the encoder's baseline.
    """
    _, features, predict = stimulus_predictor(
        feature_stores, events, media, settings, stimulus=stimulus
    )
    if all(f is None for f in features.values()):
        raise TribeInputError(
            f"no features: every modality of {list(features)} is absent, nothing to ablate",
            stimulus=stimulus,
        )
    _, contributions = ablation_contributions(
        lambda f: predict(f, allow_all_absent=True).predictions, features
    )
    log.info("contributions of %s: modalities %s", stimulus, list(contributions))
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_contribution_maps(contributions, tmp)


def run_evaluate(
    predictions: str | Path, real_fmri: str | Path, out_dir: str | Path, *, top_k: list[int]
) -> None:
    """Stage 5: predictions against a real fMRI run (per-vertex r, MSE, TR retrieval)."""
    result = read_predictions(predictions)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_evaluation(result.predictions, Path(real_fmri), tmp, top_k=tuple(top_k))

"""One function per workflow stage, from input paths to output paths.

``workflow_scripts/*.py`` call exactly one of these; they hold no logic. Each
function takes plain paths and values (never Snakemake objects), so a stage can
be run and tested without Snakemake.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import write_text_atomic
from tribe_core.measure import measure

log = logging.getLogger(__name__)


def _write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _read_media(path: str | Path):
    from tribe_core.media import MediaInfo

    return MediaInfo.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def checkpoint_meta(checkpoint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(config.yaml dict, model_build_args)`` of a checkpoint dir or hub id."""
    from tribe_core.encoder import load_config_yaml
    from tribe_core.encoder.load import read_checkpoint, resolve_model_dir

    model_dir = resolve_model_dir(checkpoint)
    _, build_args, _ = read_checkpoint(model_dir)
    return load_config_yaml(model_dir / "config.yaml"), build_args


def run_extract_audio(stimulus: str | Path, wav_out: str | Path, media_out: str | Path) -> None:
    """Stage 1 (video/audio): 16 kHz mono WAV + ``media.json``."""
    from tribe_core.media import extract_audio

    info = extract_audio(Path(stimulus), Path(wav_out))
    if info.kind == "audio":
        _check_decoded_length(Path(stimulus), Path(wav_out), info.duration_s)
    _write_json(media_out, info.to_dict())
    log.info("extracted audio of %s: %s", stimulus, info)


def _check_decoded_length(stimulus: Path, wav: Path, duration_s: float) -> None:
    """Refuse an audio file that decodes much shorter than it declares (truncated)."""
    import wave

    with wave.open(str(wav), "rb") as handle:
        decoded_s = handle.getnframes() / handle.getframerate()
    if duration_s - decoded_s > max(0.5, 0.05 * duration_s):
        wav.unlink(missing_ok=True)
        raise TribeInputError(
            f"truncated or corrupt audio: it declares {duration_s:.2f} s but only "
            f"{decoded_s:.2f} s decode; re-encode or replace the file",
            path=stimulus,
            stimulus=stimulus.stem,
        )


def run_synthesize_speech(
    text_path: str | Path,
    wav_out: str | Path,
    media_out: str | Path,
    transcript_out: str | Path,
    language: str | None,
    engine: str = "espeak",
) -> None:
    """Stage 1 (text): speech WAV, ``media.json`` and the known word timings."""
    from tribe_core.events import write_transcript
    from tribe_core.media import synthesize_speech

    info, transcript = synthesize_speech(Path(text_path), Path(wav_out), language, engine)
    write_transcript(transcript, transcript_out)
    _write_json(media_out, info.to_dict())


def run_transcribe(
    wav: str | Path,
    media: str | Path,
    transcript_out: str | Path,
    *,
    sidecar: str | Path | None,
    model: str,
    language: str | None,
    device: str,
    compute_type: str,
    batch_size: int,
    align_model: str | None,
) -> None:
    """Stage 2: transcript from a sidecar if given, else whisperX."""
    from tribe_core.events import read_sidecar, transcribe, write_transcript

    if sidecar:
        transcript = read_sidecar(Path(sidecar), language=language)
        log.info("using sidecar transcript %s", sidecar)
    else:
        transcript = transcribe(
            Path(wav),
            model=model,
            language=language,
            device=device,
            compute_type=compute_type,
            batch_size=batch_size,
            align_model=align_model,
        )
    write_transcript(transcript, transcript_out)


def run_annotate_words(transcript: str | Path, media: str | Path, events_out: str | Path) -> None:
    """Stage 2: words with sentences and contexts, plus Audio/Video events."""
    from tribe_core.events import build_events, read_transcript, write_events_tsv

    events = build_events(read_transcript(transcript), _read_media(media))
    write_events_tsv(events, Path(events_out))


def run_extract_features(
    modality: str,
    source: str | Path,
    media: str | Path,
    store_out: str | Path,
    *,
    checkpoint: str,
    model_override: str | None,
    device: str,
    dtype: str,
    batch_size: int,
    store_dtype: str = "float32",
    stimulus: str | None = None,
) -> None:
    """Stage 3: one modality's features ``[L, D, T]`` into a Zarr store.

    ``source`` is ``events.tsv`` (text), ``audio.wav`` (audio) or the video file.
    A stimulus without that modality (no audio stream, no words) gets an
    absent-modality store, which the encoder zero-fills.
    """
    import numpy as np

    from tribe_core import features as feat
    from tribe_core.io.zarr_store import write_feature_store

    info = _read_media(media)
    config, build_args = checkpoint_meta(checkpoint)
    overrides = {modality: {"device": device, "dtype": dtype, "batch_size": batch_size}}
    if model_override:
        overrides[modality]["model"] = model_override
    specs = feat.feature_specs_from_config(config, build_args["feature_dims"], overrides)
    if modality not in specs:
        raise TribeInputError(
            f"the checkpoint {checkpoint!r} has no {modality!r} features", stimulus=stimulus
        )
    spec = specs[modality]
    attrs = feat.feature_store_attrs(spec, info.duration_s)
    with measure() as timing:
        array = _extract_modality(modality, Path(source), spec, info)
    if array is not None:
        array = np.asarray(array, dtype=store_dtype)
    write_feature_store(store_out, array, {**attrs, "timing": timing})
    log.info(
        "%s features of %s: %s in %s",
        modality, stimulus, None if array is None else array.shape, timing,
    )  # fmt: skip


def _extract_modality(modality: str, source: Path, spec, info):  # noqa: ANN001, ANN202
    from tribe_core import features as feat

    array = None
    if modality == "text":
        from tribe_core.events import read_events_tsv

        array = feat.extract_text_features(read_events_tsv(source), spec, info.duration_s)
    elif modality == "audio":
        if info.has_audio:
            array = feat.extract_audio_features(source, spec, info.duration_s)
    elif modality == "video":
        if info.has_video:
            array = feat.extract_video_features(source, spec, info.duration_s)
    else:
        raise ValueError(f"unknown modality {modality!r}")
    return array


def run_predict(
    feature_stores: Mapping[str, str | Path],
    events: str | Path,
    media: str | Path,
    predictions_out: str | Path,
    *,
    checkpoint: str,
    device: str,
    precision: str,
    batch_size: int,
    duration_trs: int,
    overlap_trs: int,
    compile: bool = False,
    stimulus: str | None = None,
) -> None:
    """Stage 4: segmented encoder inference over the whole stimulus."""
    from tribe_core.encoder import load_encoder
    from tribe_core.events import read_events_tsv
    from tribe_core.io.zarr_store import read_feature_store
    from tribe_core.segments import predict_stimulus, write_predictions

    info = _read_media(media)
    features = {m: read_feature_store(p)[0] for m, p in feature_stores.items()}
    encoder = load_encoder(checkpoint, device=device)
    result = predict_stimulus(
        encoder,
        features,
        read_events_tsv(Path(events)),
        duration_trs=duration_trs,
        overlap_trs=overlap_trs,
        batch_size=batch_size,
        precision=precision,
        device=device,
        duration_s=info.duration_s,
        stimulus=stimulus,
        compile=compile,
    )
    attrs = {
        "stimulus": stimulus,
        "checkpoint": checkpoint,
        "precision": precision,
        "duration_trs": duration_trs,
        "overlap_trs": overlap_trs,
        "duration_s": info.duration_s,
        "modalities_present": [m for m, f in features.items() if f is not None],
    }
    write_predictions(predictions_out, result, attrs)
    log.info("predictions of %s: %s", stimulus, result.predictions.shape)


def run_roi_table(
    predictions: str | Path,
    out_dir: str | Path,
    *,
    atlas_dir: str | None,
    rois: list[str] | None,
    top_k: int,
) -> list[Path]:
    """Stage 5: HCP-MMP1 ROI tables (per TR, time-averaged, top-k)."""
    from tribe_core.products.rois import write_roi_tables
    from tribe_core.segments import read_predictions

    result = read_predictions(predictions)
    return write_roi_tables(
        result.predictions,
        result.trs,
        Path(atlas_dir) if atlas_dir else None,
        Path(out_dir),
        rois=list(rois) or None,
        top_k=top_k,
    )


def run_volumes(
    predictions: str | Path,
    nifti_out: str | Path,
    gifti_dir: str | Path,
    *,
    smoothing_fwhm_mm: float | None,
) -> None:
    """Stage 5: NIfTI (MNI152 2 mm) and GIFTI time series."""
    from tribe_core.products.volumes import write_gifti, write_nifti
    from tribe_core.segments import read_predictions

    result = read_predictions(predictions)
    write_nifti(result.predictions, Path(nifti_out), smoothing_fwhm_mm=smoothing_fwhm_mm)
    write_gifti(result.predictions, Path(gifti_dir))


def run_plots(
    predictions: str | Path,
    out_dir: str | Path,
    *,
    trs: list[int],
    views: list[str],
    cmap: str,
    movie: bool,
) -> None:
    """Stage 5: brain maps on fsaverage5 (and optionally a movie)."""
    from tribe_core.io.atomic import atomic_path
    from tribe_core.products.plots import make_movie, plot_brain_maps
    from tribe_core.products.rois import align_trs
    from tribe_core.segments import read_predictions

    result = read_predictions(predictions)
    n_trs = result.predictions.shape[0]
    tr_start_s = align_trs(result.trs, n_trs)["tr_start_s"].tolist()
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        plot_brain_maps(
            result.predictions,
            tmp,
            trs=[t for t in trs if t < n_trs] or None,
            views=tuple(views),
            cmap=cmap,
            tr_start_s=tr_start_s,
        )
        if movie:
            make_movie(result.predictions, tmp / "movie.mp4", tr_start_s=tr_start_s)


def run_report(
    stimulus: str,
    predictions: str | Path,
    events: str | Path,
    plots_dir: str | Path,
    html_out: str | Path,
    media_path: str | Path | None,
) -> None:
    """Stage 5: the stimulus-aligned HTML report."""
    from tribe_core.events import read_events_tsv
    from tribe_core.products.report import write_report
    from tribe_core.segments import read_predictions

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

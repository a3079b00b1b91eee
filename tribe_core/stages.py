"""One function per workflow stage, from input paths to output paths.

``workflow_scripts/*.py`` call exactly one of these; they hold no logic. Each
function takes plain paths and values (never Snakemake objects), so a stage can
be run and tested without Snakemake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tribe_core.errors import TribeInputError
from tribe_core.measure import measure

log = logging.getLogger(__name__)


def _read_media(path: str | Path):  # noqa: ANN202 - MediaInfo is imported lazily
    from tribe_core.media import MediaInfo

    return MediaInfo.read(path)


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
    info.write(media_out)
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
    info.write(media_out)


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
    context_stride: int = 1,
) -> None:
    """Stage 3: one modality's features ``[L, D, T]`` into a Zarr store.

    ``source`` is ``events.tsv`` (text), ``audio.wav`` (audio) or the video file;
    ``context_stride`` is the text setting ``features.text_context_stride``.
    A stimulus without that modality (no audio stream, no words) gets an
    absent-modality store, which the encoder zero-fills.
    """
    from tribe_core import features as feat
    from tribe_core.features.timing import n_feature_steps
    from tribe_core.io.zarr_store import open_feature_store

    info = _read_media(media)
    spec = _feature_spec(
        modality, checkpoint, model_override, device, dtype, batch_size, stimulus, context_stride
    )
    attrs = feat.feature_store_attrs(spec, info.duration_s)
    n_steps = n_feature_steps(info.duration_s, spec.frequency_hz)
    # Blocks go to disk as they come: memory holds one window or chunk, never the grid.
    with open_feature_store(store_out, n_steps, attrs, dtype=store_dtype) as store:
        with measure() as timing:
            for first, block in _feature_blocks(modality, Path(source), spec, info):
                store.write(first, block)
        if modality == "video" and info.has_video and store.shape is None:
            raise TribeInputError("no video sample could be encoded", path=source)
        attrs["timing"] = timing
    log.info("%s features of %s: %s in %s", modality, stimulus, store.shape, timing)


def _feature_blocks(modality: str, source: Path, spec, info):  # noqa: ANN001, ANN202
    """``(first_step, [L, D, n])`` blocks of one modality; none if the stimulus lacks it."""
    from tribe_core import features as feat

    if modality == "text":
        from tribe_core.events import read_events_tsv

        return feat.iter_text_feature_blocks(read_events_tsv(source), spec, info.duration_s)
    if modality == "audio":
        if not info.has_audio:
            return iter(())
        return feat.iter_audio_feature_blocks(source, spec, info.duration_s)
    if modality == "video":
        if not info.has_video:
            return iter(())
        return feat.iter_video_feature_blocks(source, spec, info.duration_s)
    raise ValueError(f"unknown modality {modality!r}")


def _stimulus_predictor(
    feature_stores: Mapping[str, str | Path],
    events: str | Path,
    media: str | Path,
    *,
    checkpoint: str,
    device: str,
    precision: str,
    batch_size: int,
    duration_trs: int,
    overlap_trs: int,
    compile: bool = False,
    stimulus: str | None = None,
) -> tuple[Any, dict[str, Any], Callable[..., Any]]:
    """Load a stimulus' media facts, feature stores and the encoder, once.

    Returns ``(media info, features, predict)`` where ``predict(features)`` runs
    :func:`tribe_core.segments.predict_stimulus` on any variant of the features
    (e.g. with a modality removed; ``allow_all_absent=True`` lets every one be)
    and returns its ``PredictionResult``. The features are lazy Zarr arrays: each
    segment batch reads only its steps.
    """
    from tribe_core.encoder import load_encoder
    from tribe_core.events import read_events_tsv
    from tribe_core.io.zarr_store import open_feature_array
    from tribe_core.segments import predict_stimulus

    info = _read_media(media)
    table = read_events_tsv(Path(events))
    features = {m: open_feature_array(p)[0] for m, p in feature_stores.items()}
    encoder = load_encoder(checkpoint, device=device)

    def predict(feats: dict[str, Any], allocate: Any = None, allow_all_absent: bool = False) -> Any:
        return predict_stimulus(
            encoder, feats, table,
            duration_trs=duration_trs, overlap_trs=overlap_trs, batch_size=batch_size,
            precision=precision, device=device, duration_s=info.duration_s,
            stimulus=stimulus, compile=compile, allocate=allocate,
            allow_all_absent=allow_all_absent,
        )  # fmt: skip

    return info, features, predict


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
    """Stage 4: segmented encoder inference over the whole stimulus.

    Rows go to ``predictions.zarr`` batch by batch (memory: one batch of segments).
    """
    from tribe_core.segments import open_predictions_store

    info, features, predict = _stimulus_predictor(
        feature_stores, events, media, checkpoint=checkpoint, device=device,
        precision=precision, batch_size=batch_size, duration_trs=duration_trs,
        overlap_trs=overlap_trs, compile=compile, stimulus=stimulus,
    )  # fmt: skip
    attrs = {
        "stimulus": stimulus,
        "checkpoint": checkpoint,
        "precision": precision,
        "duration_trs": duration_trs,
        "overlap_trs": overlap_trs,
        "duration_s": info.duration_s,
        "modalities_present": [m for m, f in features.items() if f is not None],
    }
    with open_predictions_store(predictions_out) as store:
        result = predict(features, allocate=store.allocate)
        store.finish(result, attrs)
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
    from tribe_core.products.volumes import write_gifti, write_nifti
    from tribe_core.segments import read_predictions

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
    from tribe_core.io.atomic import atomic_path
    from tribe_core.products.plots import make_movie, plot_brain_maps
    from tribe_core.products.rois import align_trs
    from tribe_core.segments import read_predictions

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


# --- time-sharded video features (config `features.video_shards` > 1) ---

_SHARD_KEYS = ("shard", "n_shards", "chunks", "n_chunks", "first_step", "n_steps")
_STORE_KEYS = ("present", "shape", "dtype", "timing")


def _feature_spec(
    modality: str,
    checkpoint: str,
    model_override: str | None,
    device: str,
    dtype: str,
    batch_size: int,
    stimulus: str | None,
    context_stride: int = 1,
):  # noqa: ANN202
    """The checkpoint's :class:`FeatureSpec` of ``modality`` with the run's overrides."""
    from tribe_core import features as feat

    config, build_args = checkpoint_meta(checkpoint)
    overrides = {
        modality: {
            "device": device, "dtype": dtype, "batch_size": batch_size,
            "context_stride": context_stride,
        }
    }  # fmt: skip
    if model_override:
        overrides[modality]["model"] = model_override
    specs = feat.feature_specs_from_config(config, build_args["feature_dims"], overrides)
    if modality not in specs:
        raise TribeInputError(
            f"the checkpoint {checkpoint!r} has no {modality!r} features", stimulus=stimulus
        )
    return specs[modality]


def run_extract_video_shard(
    video: str | Path,
    media: str | Path,
    store_out: str | Path,
    *,
    shard: int,
    n_shards: int,
    checkpoint: str,
    model_override: str | None,
    device: str,
    dtype: str,
    batch_size: int,
    stimulus: str | None = None,
    jobs_per_gpu: int = 1,
) -> None:
    """Stage 3, one time shard: video features of chunks ``shard_chunks(...)[shard]``.

    The store holds only the shard's steps ``[L, D, n]`` (float32), placed
    at ``attrs["first_step"]`` of the stimulus grid by
    :func:`run_merge_video_shards`. A shard with no chunk (more shards than
    the stimulus has 60 s chunks) or a stimulus without a video stream
    writes an absent store. A job asking for ``cuda`` is bound to its own
    GPU slot first (:func:`tribe_core.devices.bind_device`, ``jobs_per_gpu``
    jobs to a GPU).
    """
    from tribe_core.devices import bind_device
    from tribe_core.features import feature_store_attrs
    from tribe_core.features.timing import (
        chunk_bounds,
        chunks_grid_extent,
        n_feature_steps,
        shard_chunks,
    )
    from tribe_core.features.video import iter_video_feature_blocks
    from tribe_core.io.zarr_store import open_feature_store

    if not 0 <= shard < n_shards:
        raise ValueError(f"shard must be in 0 .. {n_shards - 1}, got {shard}")
    device = bind_device(device, jobs_per_gpu)
    info = _read_media(media)
    spec = _feature_spec("video", checkpoint, model_override, device, dtype, batch_size, stimulus)
    n_chunks = len(chunk_bounds(info.duration_s, spec.chunk_max_s, spec.chunk_min_s))
    parts = shard_chunks(n_chunks, n_shards)
    chunks = parts[shard] if shard < len(parts) and info.has_video else []
    extent = chunks_grid_extent(
        info.duration_s, spec.frequency_hz, chunks, spec.chunk_max_s, spec.chunk_min_s
    )
    first, stop = extent if extent is not None else (0, 0)
    attrs = {
        **feature_store_attrs(spec, info.duration_s),
        "shard": shard,
        "n_shards": n_shards,
        "chunks": list(chunks),
        "n_chunks": n_chunks,
        "first_step": first,
        "n_steps": n_feature_steps(info.duration_s, spec.frequency_hz),
    }
    with open_feature_store(store_out, max(stop - first, 1), attrs) as store:
        with measure() as timing:
            if extent is not None:
                blocks = iter_video_feature_blocks(Path(video), spec, info.duration_s, None, chunks)
                for start, block in blocks:
                    store.write(start - first, block)
        attrs["timing"] = timing
    log.info(
        "video shard %d/%d of %s: chunks %s, steps %d.. %s in %s",
        shard, n_shards, stimulus, chunks, first, store.shape, timing,
    )  # fmt: skip


def run_merge_video_shards(
    shard_stores: list[str | Path],
    store_out: str | Path,
    *,
    store_dtype: str = "float32",
    stimulus: str | None = None,
    steps_per_copy: int = 256,
) -> None:
    """Stage 3: place the time shards into one video store ``[L, D, T]``.

    The result has the attrs of an unsharded ``extract_video_features`` store
    and, shards being disjoint runs of independently encoded chunks, the very
    same array. ``attrs["timing"]`` sums the shards' wall time (``wall_s``)
    and keeps each shard's (``shards``). Shards are copied ``steps_per_copy``
    steps at a time, so memory stays at one piece whatever the length.
    """
    import numpy as np

    from tribe_core.io.zarr_store import open_feature_array, open_feature_store

    loaded = sorted((open_feature_array(p) for p in shard_stores), key=lambda p: p[1]["shard"])
    if not loaded:
        raise ValueError("no shard store to merge")
    base = {k: v for k, v in loaded[0][1].items() if k not in _SHARD_KEYS + _STORE_KEYS}
    n_shards, n_chunks = loaded[0][1]["n_shards"], loaded[0][1]["n_chunks"]
    seen: list[int] = []
    for path, (_, attrs) in zip(shard_stores, loaded, strict=True):
        own = {k: v for k, v in attrs.items() if k not in _SHARD_KEYS + _STORE_KEYS}
        if own != base or attrs["n_shards"] != n_shards or attrs["n_chunks"] != n_chunks:
            raise TribeInputError(
                "video shard made with other settings than shard 0; rerun its job",
                path=path,
                stimulus=stimulus,
            )
        seen += attrs["chunks"]
    shards = [a["shard"] for _, a in loaded]
    if shards != list(range(n_shards)) or len(shard_stores) != n_shards:
        raise TribeInputError(
            f"expected shards 0..{n_shards - 1}, got {shards}", path=store_out, stimulus=stimulus
        )
    present = [(data, attrs) for data, attrs in loaded if data is not None]
    if present and sorted(seen) != list(range(n_chunks)):
        raise TribeInputError(
            f"video shards cover chunks {sorted(seen)} of {n_chunks}",
            path=store_out,
            stimulus=stimulus,
        )
    timings = [a["timing"] for _, a in loaded]
    cuda = [t.get("cuda_peak_mb") for t in timings if t.get("cuda_peak_mb") is not None]
    timing = {
        "wall_s": round(sum(t["wall_s"] for t in timings), 3),
        "peak_rss_mb": max(t["peak_rss_mb"] for t in timings),
        "cuda_peak_mb": max(cuda) if cuda else None,
        "shards": timings,
    }
    base["timing"] = timing
    n_steps = loaded[0][1]["n_steps"]
    with open_feature_store(store_out, n_steps, base, dtype=store_dtype) as store:
        with measure() as merge_timing:
            for data, attrs in present:
                for a in range(0, data.shape[-1], steps_per_copy):
                    piece = np.asarray(data[..., a : a + steps_per_copy], dtype=np.float32)
                    store.write(attrs["first_step"] + a, piece)
        timing["merge"] = merge_timing
    log.info("merged %d video shards of %s: %s", n_shards, stimulus, store.shape)


def run_contributions(
    feature_stores: Mapping[str, str | Path],
    events: str | Path,
    media: str | Path,
    out_dir: str | Path,
    *,
    checkpoint: str,
    device: str,
    precision: str,
    batch_size: int,
    duration_trs: int,
    overlap_trs: int,
    stimulus: str | None = None,
) -> None:
    """Stage 5: per-modality contribution maps (prediction minus prediction without it).

    One map per modality the stimulus has (a modality it lacks is already
    zero-filled in the prediction, so it has no map). Without its only modality
    a stimulus is predicted from all-zero-filled inputs, the encoder's baseline.
    """
    from tribe_core.io.atomic import atomic_path
    from tribe_core.products.analyses import ablation_contributions, write_contribution_maps

    _, features, predict = _stimulus_predictor(
        feature_stores, events, media, checkpoint=checkpoint, device=device,
        precision=precision, batch_size=batch_size, duration_trs=duration_trs,
        overlap_trs=overlap_trs, stimulus=stimulus,
    )  # fmt: skip
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
    from tribe_core.io.atomic import atomic_path
    from tribe_core.products.analyses import write_evaluation
    from tribe_core.segments import read_predictions

    result = read_predictions(predictions)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_evaluation(result.predictions, Path(real_fmri), tmp, top_k=tuple(top_k))

"""Stage 3 (``rules/features.smk``): features into Zarr, whole or in video time shards.

One function per rule, from input paths to output paths (see :mod:`tribe_core.stages`);
the work is :mod:`tribe_core.features.extract` and :mod:`tribe_core.features.shards`.
"""

from __future__ import annotations

from pathlib import Path

from tribe_core.devices import bind_device
from tribe_core.features.extract import checkpoint_feature_spec, write_features
from tribe_core.features.shards import check_shard, merge_video_shards, write_video_shard
from tribe_core.media.probe import MediaInfo


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
    fused: str | bool = "auto",
) -> None:
    """Stage 3: one modality's features ``[L, D, T]`` into a Zarr store.

    ``source`` is ``events.tsv`` (text), ``audio.wav`` (audio) or the video file;
    ``context_stride`` is the text setting ``features.text_context_stride``;
    ``fused`` is ``features.fused`` (text and video).
    A stimulus without that modality (no audio stream, no words) gets an
    absent-modality store, which the encoder zero-fills.
    """
    info = MediaInfo.read(media)
    spec = checkpoint_feature_spec(
        checkpoint, modality, model_override=model_override, device=device, dtype=dtype,
        batch_size=batch_size, context_stride=context_stride, fused=fused, stimulus=stimulus,
    )  # fmt: skip
    write_features(Path(source), info, spec, store_out, store_dtype=store_dtype, stimulus=stimulus)


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
    fused: str | bool = "auto",
) -> None:
    """Stage 3, one time shard: video features of chunks ``shard_chunks(...)[shard]``.

    See :func:`tribe_core.features.shards.write_video_shard`. A job asking for
    ``cuda`` is bound to its own GPU slot first
    (:func:`tribe_core.devices.bind_device`, ``jobs_per_gpu`` jobs to a GPU).
    """
    check_shard(shard, n_shards)
    device = bind_device(device, jobs_per_gpu)
    info = MediaInfo.read(media)
    spec = checkpoint_feature_spec(
        checkpoint, "video", model_override=model_override, device=device, dtype=dtype,
        batch_size=batch_size, fused=fused, stimulus=stimulus,
    )  # fmt: skip
    write_video_shard(
        video, info, spec, store_out, shard=shard, n_shards=n_shards, stimulus=stimulus
    )


def run_merge_video_shards(
    shard_stores: list[str | Path],
    store_out: str | Path,
    *,
    store_dtype: str = "float32",
    stimulus: str | None = None,
    steps_per_copy: int = 256,
) -> None:
    """Stage 3: place the time shards into one video store ``[L, D, T]``.

    See :func:`tribe_core.features.shards.merge_video_shards`: the same array as
    one unsharded job's, copied ``steps_per_copy`` steps at a time.
    """
    merge_video_shards(
        shard_stores, store_out, store_dtype=store_dtype, stimulus=stimulus,
        steps_per_copy=steps_per_copy,
    )  # fmt: skip

"""One modality's features of a stimulus into a Zarr store, as they come (stage 3).

:func:`checkpoint_feature_spec` is the checkpoint's :class:`FeatureSpec` of a
modality with the run's settings; :func:`write_features` extracts it block by
block (text: 100 s windows; audio and video: 60 s chunks) into the store, so
memory holds one block, never the whole ``[L, D, T]`` grid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tribe_core.encoder.load import checkpoint_meta
from tribe_core.errors import TribeInputError
from tribe_core.events.annotate import read_events_tsv
from tribe_core.features.audio import iter_audio_feature_blocks
from tribe_core.features.spec import FeatureSpec, feature_specs_from_config
from tribe_core.features.store import feature_store_attrs
from tribe_core.features.text import iter_text_feature_blocks
from tribe_core.features.timing import n_feature_steps
from tribe_core.features.video import iter_video_feature_blocks
from tribe_core.io.zarr_store import open_feature_store
from tribe_core.measure import measure
from tribe_core.media.probe import MediaInfo

log = logging.getLogger(__name__)


def checkpoint_feature_spec(
    checkpoint: str,
    modality: str,
    *,
    model_override: str | None,
    device: str,
    dtype: str,
    batch_size: int,
    context_stride: int = 1,
    fused: str | bool = "auto",
    stimulus: str | None = None,
) -> FeatureSpec:
    """The checkpoint's :class:`FeatureSpec` of ``modality`` with the run's settings.

    Parameters
    ----------
    checkpoint
        TRIBE v2 model directory or hub id; its ``config.yaml`` and
        ``feature_dims`` define the models, layers and rate.
    modality
        ``"text"``, ``"audio"`` or ``"video"``.
    model_override
        Another copy of the feature model (config ``feature_models``); ``None``
        keeps the checkpoint's.
    device, dtype, batch_size, context_stride, fused
        The run's settings (config ``features``).
    stimulus
        Named in the error.

    Raises
    ------
    TribeInputError
        The checkpoint has no features of ``modality``.
    """
    config, build_args = checkpoint_meta(checkpoint)
    overrides = {
        modality: {
            "device": device, "dtype": dtype, "batch_size": batch_size,
            "context_stride": context_stride, "fused": fused,
        }
    }  # fmt: skip
    if model_override:
        overrides[modality]["model"] = model_override
    specs = feature_specs_from_config(config, build_args["feature_dims"], overrides)
    if modality not in specs:
        raise TribeInputError(
            f"the checkpoint {checkpoint!r} has no {modality!r} features", stimulus=stimulus
        )
    return specs[modality]


def feature_blocks(
    source: Path, spec: FeatureSpec, info: MediaInfo
) -> Iterator[tuple[int, np.ndarray]]:
    """``(first_step, [L, D, n])`` blocks of ``spec.modality``; none if the stimulus lacks it.

    ``source`` is ``events.tsv`` (text), ``audio.wav`` (audio) or the video file.
    """
    if spec.modality == "text":
        return iter_text_feature_blocks(read_events_tsv(source), spec, info.duration_s)
    if spec.modality == "audio":
        if not info.has_audio:
            return iter(())
        return iter_audio_feature_blocks(source, spec, info.duration_s)
    if not info.has_video:
        return iter(())
    return iter_video_feature_blocks(source, spec, info.duration_s)


def write_features(
    source: Path,
    info: MediaInfo,
    spec: FeatureSpec,
    store_out: str | Path,
    *,
    store_dtype: str,
    stimulus: str | None = None,
) -> None:
    """Extract ``spec.modality``'s features ``[L, D, T]`` into the store ``store_out``.

    The store's attrs are :func:`feature_store_attrs` plus ``timing`` (wall time
    and peak memory of the extraction). A stimulus without the modality (no audio
    stream, no words) gets an absent-modality store, which the encoder zero-fills.

    Raises
    ------
    TribeInputError
        A video stream of which no sample could be encoded.
    """
    attrs = feature_store_attrs(spec, info.duration_s)
    n_steps = n_feature_steps(info.duration_s, spec.frequency_hz)
    with open_feature_store(store_out, n_steps, attrs, dtype=store_dtype) as store:
        with measure() as timing:
            for first, block in feature_blocks(source, spec, info):
                store.write(first, block)
        if spec.modality == "video" and info.has_video and store.shape is None:
            raise TribeInputError("no video sample could be encoded", path=source)
        attrs["timing"] = timing
    log.info("%s features of %s: %s in %s", spec.modality, stimulus, store.shape, timing)

"""Feature extraction: text, audio and video hidden states on the 2 Hz grid.

Public API (see ``docs/ARCHITECTURE.md``):

- :class:`FeatureSpec`, :func:`feature_specs_from_config`,
  :func:`check_spec_against_dims`, :func:`check_feature_models` — settings
  from the checkpoint's ``config.yaml`` (``data.{text,audio,video}_feature``,
  ``data.layers_to_use`` / ``n_layers_to_use`` / ``layer_aggregation`` /
  ``frequency``), checked against ``model_build_args.feature_dims`` from the
  model configs before any weight is loaded;
- :func:`extract_text_features`, :func:`extract_audio_features`,
  :func:`extract_video_features` -> ``[L, D, T]`` float32 with
  ``T = n_feature_steps(duration_s, 2.0)``; text returns ``None`` when the
  stimulus has no usable word and audio when the WAV has no sample (the
  workflow then writes an absent-modality store, which the encoder
  zero-fills); video raises ``TribeInputError`` when shorter than one sample
  or undecodable;
- :func:`feature_store_attrs` — store attributes that make a store made with
  other settings stale;
- :func:`n_feature_steps`, :func:`n_layer_groups`, :func:`aggregate_layers`,
  :func:`hidden_state_shape`.

Semantics are neuralset 0.0.2's (``HuggingFaceText``, ``Wav2VecBert``,
``HuggingFaceVideo``), checked value for value by the tests on tiny models;
see each module's docstring. In short: all hidden states, ``cache_n_layers``
subselection (text, video), layer groups, token mean; text words summed
into 2 Hz bins by start/duration, per 100 s inference segment (a word
straddling a segment boundary counts in both, as in the reference); audio
and video encoded in the reference's 60 s / 30 s chunks, audio frames
resampled to 2 Hz by nearest neighbour, video clips of 64 frames over the
4 s before each sample (clamped at the chunk start), frame
``int(fps * t + 1e-5)`` as moviepy reads it.

Where we differ from the reference on purpose:

- rotated videos are decoded upright (moviepy's rotation parsing fails with
  some ffmpeg versions and squashes the frames);
- a tokenizer that pads on the left is used with right padding (the
  reference's pad removal assumes right padding and garbles left-padded
  batches);

Speed, same outputs (``python benchmarks/features.py`` prints both
paths): text reads every word whose context is a token prefix of a later
word's context off one forward (every word before the 1024-word window
slides), batches contexts, and runs bf16 on request; audio batches equal
60 s chunks and prepares the next batch on a thread; video decodes each
frame once (one ffmpeg process, read ahead by a thread), runs each frame
through the processor once (on the model's device), batches clips and skips
V-JEPA2's predictor. Audio and video chunks are independent, so a long
stimulus can be split into chunk shards (``chunks=``,
:func:`tribe_core.features.timing.shard_chunks`) whose outputs sum to the
unsharded one; text shards by word (``word_slice=``).
``iter_text_feature_blocks`` / ``iter_audio_feature_blocks`` /
``iter_video_feature_blocks`` yield the features window by window or chunk
by chunk, so a stage writes them to Zarr as they come
(:func:`tribe_core.io.zarr_store.open_feature_store`).

Each name loads its module on first use (:mod:`tribe_core.lazy`): importing a light
submodule (``spec``, ``store``, ``timing``), as the workflow does while it builds
the DAG, does not import torch.
"""

from typing import TYPE_CHECKING

from tribe_core.lazy import lazy_exports

__all__ = [
    "FEATURES_CODE_VERSION",
    "FeatureSpec",
    "aggregate_layers",
    "check_feature_models",
    "check_spec_against_dims",
    "extract_audio_features",
    "extract_text_features",
    "extract_video_features",
    "feature_specs_from_config",
    "feature_store_attrs",
    "hidden_state_shape",
    "iter_audio_feature_blocks",
    "iter_text_feature_blocks",
    "iter_video_feature_blocks",
    "load_audio_model",
    "load_text_model",
    "load_video_model",
    "n_feature_steps",
    "n_layer_groups",
]

if TYPE_CHECKING:
    from tribe_core.features._hf import check_feature_models, hidden_state_shape
    from tribe_core.features.audio import (
        extract_audio_features,
        iter_audio_feature_blocks,
        load_audio_model,
    )
    from tribe_core.features.layers import aggregate_layers, n_layer_groups
    from tribe_core.features.spec import (
        FeatureSpec,
        check_spec_against_dims,
        feature_specs_from_config,
    )
    from tribe_core.features.store import FEATURES_CODE_VERSION, feature_store_attrs
    from tribe_core.features.text import (
        extract_text_features,
        iter_text_feature_blocks,
        load_text_model,
    )
    from tribe_core.features.timing import n_feature_steps
    from tribe_core.features.video import (
        extract_video_features,
        iter_video_feature_blocks,
        load_video_model,
    )

__getattr__, __dir__ = lazy_exports(__name__)

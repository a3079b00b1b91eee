"""The ``data:`` section of a TRIBE ``config.yaml``, in the released layout.

Used by the demo builder to write tiny checkpoints whose config names local
model directories under the same keys as the released config (so the real
reading path, :func:`tribe_core.features.feature_specs_from_config`, is the
one exercised).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def data_config_for(
    models: Mapping[str, str],
    layers: float | list[float],
    layer_aggregation: str | None,
    *,
    clip_duration_s: float = 4.0,
    num_frames: int | None = None,
    cache_n_layers: int | None = None,
    frequency_hz: float = 2.0,
) -> dict[str, Any]:
    """Return a ``data`` section naming ``models`` (modality -> hub id or directory).

    A list of ``layers`` goes to ``data.layers_to_use`` (released layout,
    which overrides every extractor's ``layers``); a single fraction goes to
    each extractor's ``layers`` with ``layers_to_use: null`` (mini layout).
    ``num_frames=None`` keeps the reference's 64 frames per V-JEPA2 clip.
    """
    is_list = not isinstance(layers, int | float)
    layer_value: Any = (
        float(layers) if isinstance(layers, int | float) else [float(x) for x in layers]
    )
    common = {
        "layers": layer_value,
        "layer_aggregation": layer_aggregation,
        "token_aggregation": "mean",
        "cache_n_layers": cache_n_layers,
        "device": "auto",
    }
    data: dict[str, Any] = {
        "frequency": float(frequency_hz),
        "layers_to_use": layer_value if is_list else None,
        "n_layers_to_use": None,
        "layer_aggregation": layer_aggregation,
        "features_to_use": [m for m in ("text", "audio", "video") if m in models],
        "duration_trs": 100,
        "neuro": {"name": "FmriExtractor", "frequency": 1.0, "offset": 5},
    }
    if "text" in models:
        data["text_feature"] = {
            "name": "HuggingFaceText",
            "event_types": "Word",
            "model_name": str(models["text"]),
            "aggregation": "sum",
            "frequency": float(frequency_hz),
            "contextualized": True,
            "batch_size": 4,
            "allow_missing": True,
            **common,
        }
    if "audio" in models:
        data["audio_feature"] = {
            "name": "Wav2VecBert",
            "event_types": "Audio",
            "model_name": str(models["audio"]),
            "aggregation": "sum",
            "frequency": float(frequency_hz),
            "norm_audio": True,
            "normalized": True,
            "allow_missing": True,
            **common,
        }
    if "video" in models:
        data["video_feature"] = {
            "name": "HuggingFaceVideo",
            "event_types": "Video",
            "aggregation": "sum",
            "frequency": float(frequency_hz),
            "clip_duration": float(clip_duration_s),
            "num_frames": num_frames,
            "allow_missing": True,
            "image": {"name": "HuggingFaceImage", "model_name": str(models["video"]), **common},
        }
    return data

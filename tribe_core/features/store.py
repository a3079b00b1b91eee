"""Attributes of a feature store, so that a store made with other settings is stale.

:func:`feature_store_attrs` is what the workflow passes to
``tribe_core.io.zarr_store.write_feature_store`` and compares with
``store_matches``: model (hub id + revision, or a hash of a local
directory), layer settings, rate, clip timing, stimulus duration, compute
dtype and the extraction code version. Any difference means recompute.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tribe_core.encoder.config import load_config_yaml
from tribe_core.features.spec import FeatureSpec

# Bump when extraction semantics change: every existing store becomes stale.
FEATURES_CODE_VERSION = "1"
_SMALL_FILE_BYTES = 4 * 1024 * 1024


def model_fingerprint(model: str) -> str:
    """A hash of a local model directory (file names, sizes, small files' bytes).

    Weight files are identified by name and size only (hashing gigabytes on
    every run would cost more than it saves); config, tokenizer and processor
    files are hashed whole. Returns ``""`` for a hub id.
    """
    path = Path(model)
    if not path.is_dir():
        return ""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith("."):
            continue
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if size <= _SMALL_FILE_BYTES and not rel.endswith((".safetensors", ".bin", ".pt")):
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def feature_store_attrs(spec: FeatureSpec, duration_s: float) -> dict[str, Any]:
    """JSON-serialisable attrs describing how a modality's features are made."""
    layers = list(spec.layers) if isinstance(spec.layers, tuple) else spec.layers
    attrs: dict[str, Any] = {
        "modality": spec.modality,
        "model": spec.model,
        "model_revision": spec.revision or "",
        "model_hash": model_fingerprint(spec.model),
        "layers": layers,
        "layer_aggregation": spec.layer_aggregation,
        "cache_n_layers": spec.layer_subselection,
        "token_aggregation": spec.token_aggregation,
        "frequency_hz": float(spec.frequency_hz),
        "duration_s": float(duration_s),
        "compute_dtype": spec.dtype,
        "features_code_version": FEATURES_CODE_VERSION,
        "chunk_max_s": spec.chunk_max_s,
        "chunk_min_s": spec.chunk_min_s,
    }
    if spec.modality == "video":
        attrs["clip_duration_s"] = float(spec.clip_duration_s)
        attrs["n_frames"] = int(spec.n_frames)
    if spec.modality == "text":
        attrs["contextualized"] = spec.contextualized
        attrs["segment_s"] = spec.segment_s
        if spec.context_stride != 1:  # absent = 1, so stores made before it stay valid
            attrs["context_stride"] = spec.context_stride
    if spec.modality == "audio":
        attrs["norm_audio"] = spec.norm_audio
    return json.loads(json.dumps(attrs))


def feature_model_fingerprints(
    checkpoint: str, overrides: dict[str, str | None] | None = None
) -> dict[str, str]:
    """Modality -> :func:`model_fingerprint` of the feature model a run will use.

    The model is the override if given, else the one the checkpoint's
    ``config.yaml`` names (local checkpoints only; a hub checkpoint names hub
    models, whose identity is their id). Used as a rule parameter, so that a
    local model directory whose contents change reruns its feature jobs.
    """
    overrides = overrides or {}
    data: dict[str, Any] = {}
    config_yaml = Path(checkpoint) / "config.yaml"
    if config_yaml.is_file():
        data = load_config_yaml(config_yaml).get("data") or {}
    prints = {}
    for modality in ("text", "audio", "video"):
        model = overrides.get(modality)
        if not model:
            section = data.get(f"{modality}_feature") or {}
            if modality == "video":
                section = section.get("image") or {}
            model = section.get("model_name") or ""
        prints[modality] = model_fingerprint(str(model)) if model else ""
    return prints

"""Loading feature models with ``transformers`` (hub id or local directory, no remote code)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tribe_core.errors import TribeConfigError
from tribe_core.features.spec import DTYPES, FeatureSpec

# Compute dtype name (FeatureSpec.dtype, config features.dtype) -> torch dtype
TORCH_DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in DTYPES}


def _pretrained_kwargs(spec: FeatureSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if spec.revision and not Path(spec.model).is_dir():
        kwargs["revision"] = spec.revision
    return kwargs


def load_config(model: str, revision: str | None = None) -> Any:
    """The HF config of ``model`` (hub id or local directory)."""
    from transformers import AutoConfig

    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if revision and not Path(model).is_dir():
        kwargs["revision"] = revision
    try:
        return AutoConfig.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as exc:
        raise TribeConfigError(
            f"cannot load the config of feature model {model!r} ({exc}); give a local directory "
            "or a reachable hub id"
        ) from exc


def hidden_state_shape(model_dir: str | Path, revision: str | None = None) -> tuple[int, int]:
    """``(n_hidden_states, hidden_size)`` a model returns with ``output_hidden_states``.

    ``n_hidden_states`` counts the embedding output plus one per block
    (``num_hidden_layers + 1``), for text, w2v-BERT and V-JEPA2 configs alike.
    """
    config = load_config(str(model_dir), revision)
    config = getattr(config, "text_config", config)
    try:
        return int(config.num_hidden_layers) + 1, int(config.hidden_size)
    except AttributeError as exc:
        raise TribeConfigError(
            f"feature model {model_dir!r}: config has no num_hidden_layers/hidden_size"
        ) from exc


def _stored_dtype(model: str, revision: str | None) -> torch.dtype | None:
    """The dtype the checkpoint's weights are saved in, as its config says (if it says)."""
    config = load_config(model, revision)
    stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(stored, str):
        stored = getattr(torch, stored, None)
    return stored if isinstance(stored, torch.dtype) else None


def _load_dtype(spec: FeatureSpec) -> torch.dtype:
    """Dtype to read the weights in: the stored one when both are 16-bit but differ.

    Converting bf16 weights to fp16 while loading holds both copies in host
    memory; reading them as stored and casting the parameters after the move
    to the device holds one (``benchmarks/model_load.py`` on an H200, 7.5 GB of
    weights: 15,800 MB peak vs 8,420 MB). The cast is the same element-wise
    rounding either way.
    """
    target = TORCH_DTYPES[spec.dtype]
    half = (torch.float16, torch.bfloat16)
    stored = _stored_dtype(spec.model, spec.revision) if target in half else None
    return stored if stored in half and stored != target else target


def load_model(spec: FeatureSpec, model_class: Any | None = None) -> torch.nn.Module:
    """Load ``spec.model`` in ``spec.dtype`` on ``spec.device``, in eval mode."""
    from transformers import AutoModel

    cls = model_class or AutoModel
    load_dtype = _load_dtype(spec)
    try:
        model = cls.from_pretrained(spec.model, dtype=load_dtype, **_pretrained_kwargs(spec))
    except (OSError, ValueError) as exc:
        raise TribeConfigError(
            f"{spec.modality}: cannot load feature model {spec.model!r} ({exc})"
        ) from exc
    model.to(spec.device)
    target = TORCH_DTYPES[spec.dtype]
    if load_dtype != target:  # parameters only, one at a time, on the device
        for param in model.parameters():
            if param.dtype == load_dtype:
                param.data = param.data.to(target)
    model.eval()
    return model


def load_preprocessor(spec: FeatureSpec, kind: str, **extra: Any) -> Any:
    """Tokenizer / feature extractor / video processor of ``spec.model``."""
    import transformers

    cls: Any = {
        "tokenizer": transformers.AutoTokenizer,
        "feature_extractor": transformers.AutoFeatureExtractor,
        "video_processor": transformers.AutoVideoProcessor,
    }[kind]
    try:
        return cls.from_pretrained(spec.model, **_pretrained_kwargs(spec), **extra)
    except (OSError, ValueError) as exc:
        raise TribeConfigError(
            f"{spec.modality}: cannot load the {kind} of {spec.model!r} ({exc})"
        ) from exc


def check_model_layout(spec: FeatureSpec) -> tuple[int, int]:
    """Check ``spec.model``'s config against ``spec.expected_dims`` before loading weights.

    See :func:`tribe_core.features.spec.check_spec_against_dims`.
    """
    from tribe_core.features.spec import check_spec_against_dims

    n_states, hidden = hidden_state_shape(spec.model, spec.revision)
    return check_spec_against_dims(spec, n_states, hidden)


def check_feature_models(specs: Mapping[str, FeatureSpec]) -> dict[str, tuple[int, int]]:
    """Check every modality's model against the checkpoint (configs only, no weights).

    Returns modality -> ``(n_layer_groups, hidden_size)``; raises
    ``TribeConfigError`` at the first mismatch. Cheap enough for a
    workflow's start-up check.
    """
    return {modality: check_model_layout(spec) for modality, spec in specs.items()}

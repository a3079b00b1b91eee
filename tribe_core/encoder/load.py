"""Load a TRIBE v2 checkpoint (local folder or Hugging Face hub id) strictly.

A model directory holds ``config.yaml`` and either the released Lightning
``best.ckpt`` (``state_dict`` keys prefixed ``model.``, plus
``model_build_args``) or ``model.safetensors`` written by
:func:`tribe_core.encoder.convert.convert_checkpoint` (keys without prefix,
build args in the metadata). Both go through the same strict key/shape check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tribe_core.encoder.config import architecture_from_config, load_config_yaml
from tribe_core.encoder.files import (
    CKPT_NAME,
    CONFIG_NAME,
    SAFETENSORS_NAME,
    STATE_PREFIX,
    resolve_model_dir,
)
from tribe_core.encoder.model import TribeEncoder
from tribe_core.errors import CheckpointError

_MAX_LISTED = 12


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f", ... ({more} more)" if more > 0 else "")


def _read_lightning(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r} with torch.load(weights_only=True): {exc}"
        ) from exc
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
        raise CheckpointError(f"{str(path)!r} is not a Lightning checkpoint (no 'state_dict')")
    if "model_build_args" not in ckpt:
        raise CheckpointError(f"{str(path)!r} has no 'model_build_args'")
    state: dict[str, torch.Tensor] = {}
    unprefixed = []
    for key, value in ckpt["state_dict"].items():
        if key.startswith(STATE_PREFIX):
            state[key[len(STATE_PREFIX) :]] = value
        else:
            unprefixed.append(key)
    if unprefixed:
        raise CheckpointError(
            f"{str(path)!r}: state_dict keys without the {STATE_PREFIX!r} prefix: "
            + _listing(unprefixed)
        )
    return state, dict(ckpt["model_build_args"])


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:
        raise CheckpointError(f"cannot read safetensors file {str(path)!r}: {exc}") from exc
    if "model_build_args" not in meta:
        raise CheckpointError(f"{str(path)!r} has no 'model_build_args' metadata")
    return state, json.loads(meta["model_build_args"])


def read_checkpoint(model_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], Path]:
    """Return ``(state_dict without prefix, model_build_args, weights file)``."""
    safetensors = model_dir / SAFETENSORS_NAME
    if safetensors.is_file():
        return (*_read_safetensors(safetensors), safetensors)
    ckpt = model_dir / CKPT_NAME
    if ckpt.is_file():
        return (*_read_lightning(ckpt), ckpt)
    raise CheckpointError(
        f"model directory {str(model_dir)!r} has neither {CKPT_NAME} nor {SAFETENSORS_NAME}"
    )


def checkpoint_meta(checkpoint: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(config.yaml dict, model_build_args)`` of a checkpoint directory or hub id.

    What the feature stages and planning need to know of a checkpoint, without
    building the encoder.
    """
    model_dir = resolve_model_dir(checkpoint)
    _, build_args, _ = read_checkpoint(model_dir)
    return load_config_yaml(model_dir / CONFIG_NAME), build_args


def check_state_dict(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Raise :class:`CheckpointError` listing missing/unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    lines = [f"checkpoint {source} does not match the architecture its config declares:"]
    if missing:
        lines.append(f"  missing keys ({len(missing)}): {_listing(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
    if mismatched:
        lines.append(f"  shape mismatches ({len(mismatched)}): {_listing(mismatched)}")
    raise CheckpointError("\n".join(lines))


def load_encoder(
    path_or_repo_id: str | Path,
    device: str | torch.device = "cpu",
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> TribeEncoder:
    """Load a TRIBE v2 encoder, strictly, in eval mode, float32, average subject.

    Parameters
    ----------
    path_or_repo_id
        Local directory with ``config.yaml`` + ``best.ckpt`` (or
        ``model.safetensors``), or a hub id (e.g. ``facebook/tribev2``).
    device
        Where the weights go.
    revision, cache_dir, local_files_only
        Hub options (see :func:`resolve_model_dir`).

    Returns
    -------
    TribeEncoder
        With ``feature_dims``, ``n_outputs``, ``n_output_timesteps`` and
        ``config`` (the parsed ``config.yaml``).

    Raises
    ------
    CheckpointError
        Unreadable or mismatching weights (names every missing/unexpected key
        and shape mismatch).
    TribeConfigError
        Unreadable config, unsupported architecture options or python tags.
    """
    model_dir = resolve_model_dir(
        path_or_repo_id,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )
    config = load_config_yaml(model_dir / CONFIG_NAME)
    state, build_args, weights = read_checkpoint(model_dir)
    arch = architecture_from_config(config, build_args, source=str(weights))
    with torch.device("meta"):
        model = TribeEncoder(arch, config)
    check_state_dict(model, state, repr(str(weights)))
    model = model.to_empty(device=device)
    # Tensors are copied (cast to float32) into freshly allocated parameters; the
    # mmap'd checkpoint is released afterwards.
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval().requires_grad_(False)

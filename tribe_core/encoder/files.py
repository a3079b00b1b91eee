"""The files of a TRIBE v2 model directory, and where to find them (no torch).

A model directory holds ``config.yaml`` and the weights: the released Lightning
``best.ckpt`` or the converted ``model.safetensors``. The workflow checks a
config's ``checkpoint`` with these names while it builds the DAG, so this module
imports nothing heavy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tribe_core.errors import CheckpointError

CONFIG_NAME = "config.yaml"
CKPT_NAME = "best.ckpt"
SAFETENSORS_NAME = "model.safetensors"
STATE_PREFIX = "model."
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_model_dir(
    path_or_repo_id: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> Path:
    """Return a local directory holding ``config.yaml`` and the weights.

    Parameters
    ----------
    path_or_repo_id
        An existing local directory, or a hub id such as ``facebook/tribev2``
        (downloaded once into the Hugging Face cache; the cache path is never
        derived from the id by hand).
    revision, cache_dir, local_files_only
        Passed to ``huggingface_hub.hf_hub_download``.

    Raises
    ------
    CheckpointError
        Not a directory and not a hub id, or the hub files cannot be fetched
        (offline and not cached, unknown repo, missing file).
    """
    local = Path(path_or_repo_id).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise CheckpointError(
            f"{str(local)!r} is a file; give the model directory holding "
            f"{CONFIG_NAME} and {CKPT_NAME}"
        )
    text = str(path_or_repo_id)
    if not _REPO_ID.match(text):
        raise CheckpointError(
            f"model {text!r}: no such directory, and not a hub id of the form 'org/name'"
        )
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise CheckpointError(f"huggingface_hub is needed to fetch {text!r}") from exc
    kwargs: dict[str, Any] = {
        "repo_id": text,
        "revision": revision,
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "local_files_only": local_files_only,
    }
    try:
        config = Path(hf_hub_download(filename=CONFIG_NAME, **kwargs))
    except Exception as exc:  # hub raises many types: offline, 404, gated, network
        raise CheckpointError(
            f"could not fetch {CONFIG_NAME} of hub model {text!r} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            "Offline? Download it once with network access (it is then cached), or "
            "pass a local directory holding config.yaml and best.ckpt."
        ) from exc
    for name in (SAFETENSORS_NAME, CKPT_NAME):
        try:
            hf_hub_download(filename=name, **kwargs)
            return config.parent
        except Exception as exc:  # noqa: BLE001 - try the next weight format
            last = exc
    raise CheckpointError(
        f"hub model {text!r} has {CONFIG_NAME} but neither {SAFETENSORS_NAME} nor "
        f"{CKPT_NAME} could be fetched ({type(last).__name__}: {last})"
    ) from last

"""Start-up checks of the workflow config that Snakemake's ``validate`` does poorly or not at all.

- :func:`check_config_keys`: a misspelt key gets one line with the nearest allowed
  key (``validate`` prints the whole schema instead);
- :func:`check_checkpoint`: the ``checkpoint`` exists (a local model directory
  with its files, or a hub id in the local cache when offline), so a dry run
  fails instead of every feature job.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tribe_core.encoder.files import (
    _REPO_ID,
    CKPT_NAME,
    CONFIG_NAME,
    SAFETENSORS_NAME,
    resolve_model_dir,
)
from tribe_core.errors import CheckpointError, TribeConfigError

_TRUE = frozenset({"1", "on", "yes", "true"})


def _object_schema(schema: Mapping[str, Any], value: Any) -> Mapping[str, Any] | None:
    """The schema of a mapping value whose keys are closed (``additionalProperties: false``)."""
    if not isinstance(value, Mapping):
        return None
    if "properties" in schema and schema.get("additionalProperties") is False:
        return schema
    for alternative in [*schema.get("oneOf", []), *schema.get("anyOf", [])]:
        found = _object_schema(alternative, value)
        if found is not None:
            return found
    return None


def _unknown_keys(
    config: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    object_schema = _object_schema(schema, config)
    if object_schema is None:
        return []
    allowed = list(object_schema["properties"])
    lines = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            where = f" in '{prefix[:-1]}'" if prefix else ""
            lines.append(
                f"config: unknown key '{name}'{hint}; allowed keys{where}: {', '.join(allowed)}"
            )
        else:
            lines += _unknown_keys(value, object_schema["properties"][key], f"{name}.")
    return lines


def check_config_keys(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Refuse keys the schema does not know, one line each, naming the nearest allowed key.

    Checks the top level and every section whose keys the schema closes
    (``additionalProperties: false``), before Snakemake's ``validate`` (which
    names the key only inside a dump of the whole schema).

    Parameters
    ----------
    config
        The workflow config (Snakemake's ``config``).
    schema_path
        ``config/schema/config.schema.yaml``.

    Raises
    ------
    TribeConfigError
        One line per unknown key, e.g. ``config: unknown key 'stimulus' (did you
        mean 'stimuli'?); allowed keys: stimuli, results_dir, ...``.
    """
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    lines = _unknown_keys(config, schema)
    if lines:
        raise TribeConfigError("\n".join(lines))


def _offline() -> bool:
    # huggingface_hub's own rule, read now rather than when it was imported
    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return flag.strip().lower() in _TRUE


def _is_local_path(text: str) -> bool:
    """A path the user means as a folder, not an ``org/name`` hub id."""
    path = Path(text).expanduser()
    if path.exists() or path.is_absolute() or text.startswith((".", "~")):
        return True
    if not _REPO_ID.match(text):
        return True
    return Path(text.split("/")[0]).is_dir()  # 'demo_models/tribe' when demo_models/ exists


def check_checkpoint(
    checkpoint: str, key: str = "checkpoint", cache_dir: str | Path | None = None
) -> None:
    """Check at start-up that the model a config's ``checkpoint`` names can be loaded.

    A local directory must hold ``config.yaml`` and ``best.ckpt`` (or the
    converted ``model.safetensors``). A hub id (``org/name``) must be in the
    Hugging Face cache when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is
    set; online, the feature jobs download it.

    Parameters
    ----------
    checkpoint
        The config value.
    key
        The config key, named in the message.
    cache_dir
        Hugging Face cache (default: the hub's own, ``HF_HUB_CACHE``).

    Raises
    ------
    TribeConfigError
        Naming the key, the path or hub id, and what is missing.
    """
    text = str(checkpoint)
    if _is_local_path(text):
        path = Path(text).expanduser()
        shown = repr(str(path)) + ("" if path.is_absolute() else f" (in {os.getcwd()!r})")
        expected = f"a TRIBE v2 model directory holding {CONFIG_NAME} and {CKPT_NAME}"
        if not path.exists():
            raise TribeConfigError(
                f"config key `{key}`: {shown} does not exist; give {expected}, "
                "or a hub id such as facebook/tribev2"
            )
        if not path.is_dir():
            raise TribeConfigError(f"config key `{key}`: {shown} is a file; give {expected}")
        missing = [n for n in (CONFIG_NAME,) if not (path / n).is_file()]
        if not any((path / n).is_file() for n in (CKPT_NAME, SAFETENSORS_NAME)):
            missing.append(f"{CKPT_NAME} (or {SAFETENSORS_NAME})")
        if missing:
            raise TribeConfigError(
                f"config key `{key}`: {shown} lacks {' and '.join(missing)}; give {expected}"
            )
        return
    if not _offline():
        return  # the feature and predict jobs download it into the cache
    try:
        resolve_model_dir(text, cache_dir=cache_dir, local_files_only=True)
    except CheckpointError as error:
        raise TribeConfigError(
            f"config key `{key}`: {text!r} is no local directory, and as a hub id it is not "
            f"in the Hugging Face cache (HF_HUB_OFFLINE is set): {error}"
        ) from None

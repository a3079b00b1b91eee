"""Convert a released ``best.ckpt`` into ``model.safetensors`` (same loader, no pickle).

The output directory holds ``config.yaml`` (copied byte for byte) and
``model.safetensors`` whose tensors are the checkpoint's state dict without the
``model.`` prefix and whose metadata carries ``model_build_args`` as JSON.
``load_encoder`` prefers ``model.safetensors`` when both are present.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tribe_core.encoder.load import (
    CONFIG_NAME,
    SAFETENSORS_NAME,
    check_state_dict,
    load_encoder,
    read_checkpoint,
)
from tribe_core.errors import CheckpointError
from tribe_core.io.atomic import atomic_path


def convert_checkpoint(src: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/config.yaml`` + ``out_dir/model.safetensors`` from ``src``.

    Parameters
    ----------
    src
        Model directory (or hub id) with ``config.yaml`` and ``best.ckpt``.
    out_dir
        Destination directory (created).

    Returns
    -------
    Path
        The written ``model.safetensors``.

    Raises
    ------
    CheckpointError
        ``src`` does not load strictly, or ``out_dir`` is ``src``.
    """
    from safetensors.torch import save_file

    from tribe_core.encoder.load import resolve_model_dir

    src_dir = resolve_model_dir(src)
    out_dir = Path(out_dir)
    if out_dir.resolve() == src_dir.resolve():
        raise CheckpointError(f"output directory {str(out_dir)!r} must differ from the source")
    # Loading validates config + keys + shapes before anything is written.
    encoder = load_encoder(src_dir)
    state, build_args, _ = read_checkpoint(src_dir)
    check_state_dict(encoder, state, repr(str(src_dir)))
    tensors = {k: v.contiguous() for k, v in state.items()}
    meta = {"model_build_args": json.dumps(build_args), "format": "tribeflow-encoder-1"}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / CONFIG_NAME) as tmp:
        shutil.copyfile(src_dir / CONFIG_NAME, tmp)
    target = out_dir / SAFETENSORS_NAME
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        # safetensors creates the file 0600; give it the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    return target

"""Tiny random V-JEPA2 (``VJEPA2Model`` + ``VJEPA2VideoProcessor``), offline.

Crops of 32 x 32 pixels (2 x 2 patches of 16), tubelets of 2 frames: a
64-frame clip is 128 tokens, so the reference's 64-frame clips stay cheap on
a CPU. ``frames_per_clip`` is kept at 64 like the released models (the
reference feeds 64 frames to any V-JEPA2, whatever the config says).
The directory name should keep ``vjepa2`` in it (and not ``video``) for
neuralset's model dispatch when it is used as an oracle.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tribe_core.io.atomic import atomic_path


def build_tiny_vjepa2(out_dir: Path, seed: int = 0, frames_per_clip: int = 64) -> Path:
    """Build a tiny random ``VJEPA2Model`` (3 blocks, hidden 32) + video processor.

    Returns
    -------
    Path
        ``out_dir`` (written atomically, ``save_pretrained`` layout).
    """
    from transformers import VJEPA2Config, VJEPA2Model, VJEPA2VideoProcessor

    config = VJEPA2Config(
        patch_size=16,
        crop_size=32,
        frames_per_clip=frames_per_clip,
        tubelet_size=2,
        hidden_size=32,
        num_attention_heads=2,
        num_hidden_layers=3,
        mlp_ratio=2.0,
        pred_hidden_size=24,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
        pred_num_mask_tokens=2,
    )
    processor = VJEPA2VideoProcessor(crop_size={"height": 32, "width": 32})
    torch.manual_seed(seed)
    model = VJEPA2Model(config).eval()
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    return out_dir

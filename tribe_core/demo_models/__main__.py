"""Build the demo models: ``python -m tribe_core.demo_models OUT_DIR [--only ...]``.

Layout of ``OUT_DIR``::

    llama/ qwen3/ w2vbert/ vjepa2/     tiny feature models (save_pretrained)
    whisper/asr whisper/align          tiny whisperX models (CTranslate2, CTC)
    tribe/                             tiny TRIBE checkpoint, released layout
                                       (Llama text, layers [0.5, 0.75, 1.0], group_mean)
    tribe_mini/                        tiny TRIBE checkpoint, mini layout
                                       (Qwen3 text, layers 2/3, mean)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def build_demo_models(out_dir: Path) -> dict[str, str]:
    """Build every demo model under ``out_dir``; return name -> directory."""
    from tribe_core.demo_models.audio import build_tiny_w2vbert
    from tribe_core.demo_models.text import build_tiny_llama, build_tiny_qwen3
    from tribe_core.demo_models.tribe import (
        MINI_AGGREGATION,
        MINI_LAYERS,
        RELEASED_AGGREGATION,
        RELEASED_LAYERS,
        build_tribe_checkpoint,
    )
    from tribe_core.demo_models.video import build_tiny_vjepa2
    from tribe_core.demo_models.whisper import build_tiny_whisper

    out_dir = out_dir.resolve()
    built: dict[str, Path] = {
        "llama": build_tiny_llama(out_dir / "llama"),
        "qwen3": build_tiny_qwen3(out_dir / "qwen3"),
        "w2vbert": build_tiny_w2vbert(out_dir / "w2vbert"),
        "vjepa2": build_tiny_vjepa2(out_dir / "vjepa2"),
    }
    whisper = build_tiny_whisper(out_dir / "whisper")
    built["whisper_asr"], built["whisper_align"] = whisper["asr"], whisper["align"]
    built["tribe"] = build_tribe_checkpoint(
        out_dir / "tribe",
        {"text": built["llama"], "audio": built["w2vbert"], "video": built["vjepa2"]},
        RELEASED_LAYERS,
        RELEASED_AGGREGATION,
    )
    built["tribe_mini"] = build_tribe_checkpoint(
        out_dir / "tribe_mini",
        {"text": built["qwen3"], "audio": built["w2vbert"], "video": built["vjepa2"]},
        MINI_LAYERS,
        MINI_AGGREGATION,
        seed=1,
    )
    manifest = {k: str(v) for k, v in built.items()}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    """Build the demo models into ``OUT_DIR`` and print each one's path."""
    parser = argparse.ArgumentParser(description="Build the tiny demo models (offline).")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    for name, path in build_demo_models(args.out_dir).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()

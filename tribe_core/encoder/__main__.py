"""``python -m tribe_core.encoder convert SRC OUT_DIR``: best.ckpt -> model.safetensors."""

from __future__ import annotations

import argparse
import sys

from tribe_core.errors import TribeError


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tribe_core.encoder")
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="convert best.ckpt to model.safetensors")
    convert.add_argument("src", help="model directory (config.yaml + best.ckpt) or hub id")
    convert.add_argument("out_dir", help="directory to write config.yaml + model.safetensors")
    args = parser.parse_args(argv)
    from tribe_core.encoder.convert import convert_checkpoint

    try:
        target = convert_checkpoint(args.src, args.out_dir)
    except TribeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

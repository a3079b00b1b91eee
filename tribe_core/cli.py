"""``tribe-core``: tribe_core's command-line tools under one name.

::

    tribe-core plan STIMULUS --checkpoint DIR   # segments, feature steps, bytes, memory
    tribe-core convert SRC OUT_DIR              # best.ckpt -> model.safetensors
    tribe-core demo-models OUT_DIR              # the tiny offline demo models

Each command is the module's own ``python -m`` tool (same options, ``--help``).
The workflow itself runs with ``snakemake`` (see the README).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from tribe_core.errors import TribeError

# name -> (module whose ``main(argv)`` runs it, arguments put first, help line).
# Modules are imported only when their command runs (torch and friends are slow to load).
COMMANDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "plan": (
        "tribe_core.planning", (),
        "plan a stimulus: segments, feature steps, Zarr chunks, bytes, memory",
    ),
    "convert": (
        "tribe_core.encoder.__main__", ("convert",),
        "convert a released best.ckpt into model.safetensors",
    ),
    "demo-models": (
        "tribe_core.demo_models.__main__", (), "build the tiny random demo models (offline)"
    ),
}  # fmt: skip


def usage() -> str:
    """The command list printed by ``tribe-core --help``."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, _, text) in COMMANDS.items()]
    return "usage: tribe-core COMMAND [ARGS...]  (COMMAND --help for its options)\n\n" + "\n".join(
        ["commands:", *lines]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (2: usage error, 1: bad input)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"tribe-core: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, first, _ = COMMANDS[name]
    try:
        return importlib.import_module(module).main([*first, *rest]) or 0
    except TribeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

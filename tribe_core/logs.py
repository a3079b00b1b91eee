"""Logging set-up for one stage: messages go to the rule's log file.

When the stage's process ends, its last log line records what it used:
``stage resources: {"start": ..., "wall_s": ..., "peak_rss_mb": ..., "cuda_peak_mb": ...}``
(JSON; ``start`` in Unix seconds; peak RSS from ``VmHWM``, the exact peak of
the process; CUDA peak from PyTorch's allocator, ``null`` when CUDA was not
used). :func:`read_stage_resources` reads it back for benchmarks.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tribe_core.measure import peak_rss_mb

RESOURCES_TAG = "stage resources: "


def setup_logging(log_path: str | Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send ``tribe_core`` log records (and warnings) to ``log_path`` and stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    logger = logging.getLogger("tribe_core")

    def _log_uncaught(exc_type, exc, tb) -> None:  # noqa: ANN001
        # The rule's log must hold the reason a job failed, not only Snakemake's output.
        logger.error("stage failed: %s", exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = _log_uncaught
    if not _STARTED:
        atexit.register(_log_usage, logger)
    _STARTED[:] = [time.time(), time.perf_counter()]
    return logger


_STARTED: list[float] = []  # wall-clock and monotonic start of the stage's process


def _log_usage(logger: logging.Logger) -> None:
    logger.info("%s%s", RESOURCES_TAG, json.dumps(_usage(*_STARTED)))


def _usage(start_wall: float, start: float) -> dict[str, Any]:
    cuda_peak = None
    torch = sys.modules.get("torch")  # only if the stage imported it
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_peak = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return {
        "start": round(start_wall, 3),
        "wall_s": round(time.perf_counter() - start, 3),
        "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": cuda_peak,
    }


def read_stage_resources(log_path: str | Path) -> dict[str, Any] | None:
    """The resources line a finished stage wrote to its log, or ``None``."""
    found = None
    for line in Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines():
        if RESOURCES_TAG in line:
            found = json.loads(line.split(RESOURCES_TAG, 1)[1])
    return found

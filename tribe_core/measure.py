"""Wall time and peak memory of a stage, recorded next to its outputs."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` would also count the
    parent's peak (Linux keeps it across fork and exec, so every stage started by
    Snakemake would report at least Snakemake's own size). ``ru_maxrss`` where
    ``/proc`` is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@contextlib.contextmanager
def measure() -> Iterator[dict[str, Any]]:
    """Yield a dict filled on exit with ``wall_s``, ``peak_rss_mb`` and ``cuda_peak_mb``.

    ``peak_rss_mb`` is the process's peak resident set size so far
    (:func:`peak_rss_mb`); ``cuda_peak_mb`` is ``None`` without a CUDA device.
    """
    stats: dict[str, Any] = {}
    cuda = None
    try:
        import torch

        if torch.cuda.is_available():
            cuda = torch.cuda
            cuda.reset_peak_memory_stats()
    except ImportError:
        pass
    start = time.perf_counter()
    try:
        yield stats
    finally:
        stats["wall_s"] = round(time.perf_counter() - start, 3)
        stats["peak_rss_mb"] = peak_rss_mb()
        stats["cuda_peak_mb"] = (
            round(cuda.max_memory_allocated() / 2**20, 1) if cuda is not None else None
        )

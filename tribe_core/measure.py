"""Wall time and peak memory of a stage, recorded next to its outputs."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def measure() -> Iterator[dict[str, Any]]:
    """Yield a dict filled on exit with ``wall_s``, ``peak_rss_mb`` and ``cuda_peak_mb``.

    ``peak_rss_mb`` is the process's peak resident set size so far (Linux
    ``ru_maxrss``); ``cuda_peak_mb`` is ``None`` without a CUDA device.
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
        stats["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        stats["cuda_peak_mb"] = (
            round(cuda.max_memory_allocated() / 2**20, 1) if cuda is not None else None
        )

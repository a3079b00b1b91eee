"""Kernel timing on the GPU for the floor benchmarks (``clip_floor.py``, ``text_floor.py``)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def cuda_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Mean milliseconds of ``fn()`` over ``repeats`` calls (CUDA events), after warm-up."""
    for _ in range(warmup):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(repeats):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / repeats

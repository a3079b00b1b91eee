"""GPU memory fallback: run a batched loop, halving the batch when memory runs out.

A batch too large for the accelerator should not fail the job: the batch that
ran out of memory is retried with half as many items (down to
``min_batch_size``) and a warning is logged. The smaller size is kept for the
rest of the loop. A memory budget (``memory_budget_mb``, or the environment
variable ``TRIBEFLOW_MEMORY_BUDGET_MB``) with an estimate of the bytes one item
needs shrinks the batch the same way before it runs, so the fallback can be
exercised (and a shared GPU protected) without a real out-of-memory error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TypeVar

from tribe_core.errors import TribeConfigError

T = TypeVar("T")
BUDGET_ENV = "TRIBEFLOW_MEMORY_BUDGET_MB"
_MB = 1024 * 1024

log = logging.getLogger(__name__)


def is_out_of_memory(error: BaseException) -> bool:
    """True for an accelerator out-of-memory error (CUDA, MPS, cuDNN/cuBLAS alloc)."""
    try:
        import torch

        if isinstance(error, torch.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(error, MemoryError):
        return False  # host RAM: halving a GPU batch is not the fix
    text = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "cublas_status_alloc_failed" in text
    )


def _free_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def budget_from_env() -> float | None:
    """The memory budget in MB from ``TRIBEFLOW_MEMORY_BUDGET_MB``, or None."""
    value = os.environ.get(BUDGET_ENV, "").strip()
    if not value:
        return None
    try:
        budget = float(value)
    except ValueError as exc:
        raise TribeConfigError(f"{BUDGET_ENV}={value!r} is not a number of MB") from exc
    if budget <= 0:
        raise TribeConfigError(f"{BUDGET_ENV}={value!r} must be > 0")
    return budget


def batch_size_for_budget(
    batch_size: int, bytes_per_item: int, memory_budget_mb: float, min_batch_size: int = 1
) -> int:
    """Largest of ``batch_size, batch_size // 2, ...`` whose estimate fits the budget.

    Raises
    ------
    TribeConfigError
        Even ``min_batch_size`` items exceed the budget.
    """
    budget = memory_budget_mb * _MB
    size = batch_size
    while size > min_batch_size and size * bytes_per_item > budget:
        size = max(min_batch_size, size // 2)
    if size * bytes_per_item > budget:
        raise TribeConfigError(
            f"a batch of {size} item(s) needs about {size * bytes_per_item / _MB:.1f} MB, "
            f"more than the memory budget of {memory_budget_mb:g} MB"
        )
    return size


def run_with_batch_fallback(
    fn: Callable[[int, int], T],
    n_items: int,
    batch_size: int,
    *,
    min_batch_size: int = 1,
    memory_budget_mb: float | None = None,
    bytes_per_item: int | None = None,
    logger: logging.Logger | None = None,
    what: str = "items",
) -> list[T]:
    """Call ``fn(start, stop)`` over ``range(n_items)`` in batches, shrinking on OOM.

    Parameters
    ----------
    fn
        Processes items ``start:stop`` (a half-open range) and returns anything.
        It must have no side effects that a retry of the same range would
        duplicate (write into preallocated slices, not append).
    n_items
        Number of items (segments, clips, chunks, sentences).
    batch_size
        Items per call to start with.
    min_batch_size
        Do not go below this; an OOM at this size is re-raised.
    memory_budget_mb, bytes_per_item
        If both are known, the batch is halved before the loop until
        ``bytes_per_item * batch`` fits the budget (default budget:
        ``TRIBEFLOW_MEMORY_BUDGET_MB``).
    logger
        Where the warnings go (default: this module's logger).
    what
        Names the items in the warnings.

    Returns
    -------
    list
        ``fn``'s results, one per successful call, in order.
    """
    if batch_size < 1 or min_batch_size < 1:
        raise TribeConfigError(
            f"batch_size ({batch_size}) and min_batch_size ({min_batch_size}) must be >= 1"
        )
    logger = logger or log
    size = max(batch_size, min_batch_size)
    if memory_budget_mb is None:
        memory_budget_mb = budget_from_env()
    if memory_budget_mb is not None and bytes_per_item:
        fitted = batch_size_for_budget(size, int(bytes_per_item), memory_budget_mb, min_batch_size)
        if fitted < size:
            logger.warning(
                "batch of %d %s (~%.1f MB) exceeds the memory budget of %g MB; using %d",
                size, what, size * bytes_per_item / _MB, memory_budget_mb, fitted,
            )  # fmt: skip
            size = fitted
    results: list[T] = []
    start = 0
    while start < n_items:
        stop = min(n_items, start + size)
        try:
            results.append(fn(start, stop))
        except Exception as error:
            if not is_out_of_memory(error) or stop - start <= min_batch_size:
                raise
            _free_cache()
            smaller = max(min_batch_size, (stop - start) // 2)
            logger.warning(
                "out of memory on a batch of %d %s (%s); retrying with %d",
                stop - start, what, str(error).splitlines()[0][:120], smaller,
            )  # fmt: skip
            size = smaller
            continue
        start = stop
    return results

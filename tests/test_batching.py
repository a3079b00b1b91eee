"""GPU memory fallback: a too-large batch shrinks with a warning instead of failing."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tribe_core.batching import (
    BUDGET_ENV,
    batch_size_for_budget,
    is_out_of_memory,
    run_with_batch_fallback,
)
from tribe_core.errors import TribeConfigError

MB = 1024 * 1024


def _squares(n_items: int, limit: int | None, calls: list[tuple[int, int]]):
    """A batched computation writing into a preallocated output; OOM above ``limit``."""
    out = np.full(n_items, -1.0)

    def fn(start: int, stop: int) -> int:
        calls.append((start, stop))
        if limit is not None and stop - start > limit:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {(stop - start) * 512} MiB"
            )
        out[start:stop] = np.arange(start, stop, dtype=float) ** 2
        return stop - start

    return out, fn


def test_no_fallback_when_everything_fits(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[int, int]] = []
    out, fn = _squares(10, None, calls)
    with caplog.at_level(logging.WARNING):
        sizes = run_with_batch_fallback(fn, 10, 4)
    assert sizes == [4, 4, 2]
    assert calls == [(0, 4), (4, 8), (8, 10)]
    np.testing.assert_array_equal(out, np.arange(10.0) ** 2)
    assert not caplog.records


def test_oom_halves_the_batch_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[int, int]] = []
    out, fn = _squares(11, 2, calls)
    logger = logging.getLogger("test.batching")
    with caplog.at_level(logging.WARNING, logger="test.batching"):
        sizes = run_with_batch_fallback(fn, 11, 8, logger=logger, what="segments")
    # 8 fails, 4 fails, 2 works and is kept for the rest of the loop.
    assert calls[:3] == [(0, 8), (0, 4), (0, 2)]
    assert sizes == [2, 2, 2, 2, 2, 1]
    np.testing.assert_array_equal(out, np.arange(11.0) ** 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "out of memory on a batch of 8 segments" in warnings[0]
    assert "retrying with 4" in warnings[0]
    assert "retrying with 2" in warnings[1]


def test_oom_at_the_minimum_is_raised() -> None:
    calls: list[tuple[int, int]] = []
    _, fn = _squares(6, 1, calls)
    with pytest.raises(torch.OutOfMemoryError):
        run_with_batch_fallback(fn, 6, 8, min_batch_size=2)
    assert calls == [(0, 6), (0, 3), (0, 2)]


def test_other_errors_are_not_swallowed() -> None:
    def fn(start: int, stop: int) -> None:
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError, match="shape mismatch"):
        run_with_batch_fallback(fn, 4, 4)


def test_forced_budget_shrinks_before_running(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[int, int]] = []
    out, fn = _squares(9, None, calls)
    with caplog.at_level(logging.WARNING):
        run_with_batch_fallback(fn, 9, 8, memory_budget_mb=25, bytes_per_item=10 * MB)
    assert calls == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    np.testing.assert_array_equal(out, np.arange(9.0) ** 2)
    assert any(
        "exceeds the memory budget of 25 MB; using 2" in r.getMessage() for r in caplog.records
    )


def test_budget_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    _, fn = _squares(4, None, calls)
    monkeypatch.setenv(BUDGET_ENV, "1")
    run_with_batch_fallback(fn, 4, 4, bytes_per_item=MB // 2)
    assert calls == [(0, 2), (2, 4)]
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(TribeConfigError, match=BUDGET_ENV):
        run_with_batch_fallback(fn, 4, 4, bytes_per_item=MB)


def test_budget_too_small_for_one_item() -> None:
    assert batch_size_for_budget(16, MB, 4.5) == 4
    with pytest.raises(TribeConfigError, match="more than the memory budget of 0.5 MB"):
        batch_size_for_budget(4, MB, 0.5)


def test_bad_batch_sizes() -> None:
    with pytest.raises(TribeConfigError, match="must be >= 1"):
        run_with_batch_fallback(lambda a, b: None, 3, 0)


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("size mismatch"))
    assert not is_out_of_memory(MemoryError())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_cuda_oom_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    free, _ = torch.cuda.mem_get_info()
    item = int(free * 0.3) // 4  # float32 elements: 4 items do not fit, 2 do
    sums = []

    def fn(start: int, stop: int) -> int:
        block = torch.ones((stop - start, item), device="cuda")
        sums.append(float(block.sum(dim=1).mean()))
        del block
        return stop - start

    with caplog.at_level(logging.WARNING):
        sizes = run_with_batch_fallback(fn, 6, 4)
    assert sum(sizes) == 6 and max(sizes) <= 2
    assert any("out of memory" in r.getMessage() for r in caplog.records)

"""Streaming writes: features and predictions go to Zarr block by block, equal to the whole."""

from __future__ import annotations

import numpy as np
import pytest

from tribe_core.features.timing import (
    WindowedEventGrid,
    add_static_events,
    assemble_blocks,
    chunk_bounds,
    chunks_grid_extent,
    n_feature_steps,
    timed_array_slices,
)
from tribe_core.io.zarr_store import open_feature_array, open_feature_store, read_feature_store


def _events(rng: np.random.Generator, n: int, duration_s: float) -> tuple[np.ndarray, ...]:
    starts = np.sort(rng.uniform(0, duration_s + 2, n))  # some past the end
    durations = rng.choice([0.0, 0.2, 0.5, 3.0], n)
    values = rng.normal(size=(n, 2, 3)).astype(np.float32)
    return starts, durations, values


@pytest.mark.parametrize("segment_s", [100.0, 7.5, None])
def test_windowed_grid_equals_add_static_events(segment_s: float | None) -> None:
    rng = np.random.default_rng(0)
    n_steps, freq = 333, 2.0
    starts, durations, values = _events(rng, 400, n_steps / freq)
    whole = add_static_events(
        np.zeros((2, 3, n_steps), np.float32), freq, starts, durations, values, segment_s
    )
    grid = WindowedEventGrid(n_steps, freq, segment_s or n_steps / freq, (2, 3))
    blocks = []
    for s, d, v in zip(starts, durations, values, strict=True):
        blocks += grid.add(s, d, v)
    blocks += grid.finish()
    np.testing.assert_array_equal(assemble_blocks(blocks, n_steps), whole)
    firsts = [first for first, _ in blocks]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)


def test_windowed_grid_releases_windows_early() -> None:
    """Memory holds a few windows: the first window is out long before the last event."""
    grid = WindowedEventGrid(2000, 2.0, 10.0, (1,))
    released_at = None
    for i, t in enumerate(np.arange(0, 990, 0.5)):
        if grid.add(t, 0.3, np.ones(1, np.float32)) and released_at is None:
            released_at = i
        assert len(grid._windows) <= 3
    assert released_at is not None and released_at < 100
    with pytest.raises(ValueError, match="start order"):
        grid.add(1.0, 0.1, np.ones(1, np.float32))


def test_feature_store_writer_blocks_and_dtype(tmp_path) -> None:
    rng = np.random.default_rng(1)
    whole = rng.normal(size=(3, 5, 700)).astype(np.float32)
    whole[..., 300:420] = 0.0  # a gap no block writes
    path = tmp_path / "f.zarr"
    attrs = {"model": "x"}
    with open_feature_store(path, 700, attrs, chunk_len=64) as store:
        for a, b in [(0, 130), (130, 300), (420, 700)]:
            store.write(a, whole[..., a:b])
        attrs["timing"] = {"wall_s": 1.0}
        assert not path.exists()  # appears only when complete
    data, got = read_feature_store(path)
    np.testing.assert_array_equal(data, whole)
    assert got["present"] and got["shape"] == [3, 5, 700] and got["timing"] == {"wall_s": 1.0}
    lazy, _ = open_feature_array(path)
    np.testing.assert_array_equal(lazy[..., 100:200], whole[..., 100:200])

    half = tmp_path / "h.zarr"
    with open_feature_store(half, 700, {}, dtype="float16") as store:
        store.write(0, whole)
    data, got = read_feature_store(half)
    assert got["dtype"] == "float16" and data.dtype == np.float32
    np.testing.assert_allclose(data, whole, atol=2e-3)


def test_feature_store_writer_absent_and_failure(tmp_path) -> None:
    with open_feature_store(tmp_path / "none.zarr", 10, {"m": 1}):
        pass
    data, attrs = read_feature_store(tmp_path / "none.zarr")
    assert data is None and attrs["present"] is False and attrs["shape"] == [0, 0, 0]

    bad = tmp_path / "bad.zarr"
    with pytest.raises(RuntimeError), open_feature_store(bad, 10, {}) as store:
        store.write(0, np.ones((1, 2, 5), np.float32))
        raise RuntimeError("killed mid-way")
    assert not bad.exists() and not list(tmp_path.glob(".bad.zarr*"))
    with open_feature_store(tmp_path / "x.zarr", 10, {}) as store:
        store.write(0, np.ones((1, 2, 5), np.float32))
        with pytest.raises(ValueError, match="does not match"):
            store.write(5, np.ones((1, 3, 5), np.float32))


def test_store_without_its_feature_array_names_the_store(tmp_path) -> None:
    import shutil

    import zarr

    from tribe_core.errors import TribeInputError
    from tribe_core.io.zarr_store import FEATURE_ARRAY, read_array

    path = tmp_path / "f.zarr"
    with open_feature_store(path, 10, {}) as store:
        store.write(0, np.ones((1, 2, 5), np.float32))
    expected = np.zeros((1, 2, 10), np.float32)
    expected[..., :5] = 1.0  # steps never written stay zero
    np.testing.assert_array_equal(read_array(path, FEATURE_ARRAY), expected)
    shutil.rmtree(path / FEATURE_ARRAY)
    with pytest.raises(TribeInputError, match=rf"f\.zarr.*has no array '{FEATURE_ARRAY}'"):
        open_feature_array(path)
    zarr.open_group(str(path), mode="a").create_group(FEATURE_ARRAY)
    with pytest.raises(TribeInputError, match="is a group, not an array"):
        read_feature_store(path)
    with pytest.raises(TribeInputError, match="is a group, not an array"):
        read_array(path, FEATURE_ARRAY)


def test_chunks_grid_extent_matches_chunk_placement() -> None:
    for duration in (45.0, 150.0, 3600.3):
        bounds = chunk_bounds(duration)
        n = n_feature_steps(duration, 2.0)
        for c, (start, length) in enumerate(bounds):
            sl = timed_array_slices(n, 2.0, n_feature_steps(length, 2.0), start)
            assert chunks_grid_extent(duration, 2.0, [c]) == (sl[0].start, sl[0].stop)
        assert chunks_grid_extent(duration, 2.0, range(len(bounds))) == (0, n)
        assert chunks_grid_extent(duration, 2.0, []) is None

"""The 2 Hz feature grid: number of steps, placement of events, media chunks.

Everything follows neuralset 0.0.2's ``TimedArray`` arithmetic, which rounds
seconds to samples with Python's ``round`` (half to even):

- a stimulus of ``duration_s`` has ``max(1, round(duration_s * f))`` steps;
  step ``k`` covers ``[k / f, (k + 1) / f)``;
- an event ``[start, start + duration)`` overlapping the grid adds its value
  to steps ``round(start * f)`` .. ``+ max(1, round(overlap * f))`` (shifted
  left if it would run past the end);
- long media are cut into chunks like ``ChunkEvents(max_duration=60,
  min_duration=30)``: cuts every 60 s, the last cut dropped when it would
  leave less than 30 s (100 s -> 60 + 40, 80 s -> 80, 130 s -> 60 + 70).
  Each chunk is encoded on its own (audio CMVN and attention, video clip
  history clamped at the chunk start), as in the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def n_feature_steps(duration_s: float, frequency_hz: float) -> int:
    """Number of feature time steps of a stimulus of ``duration_s`` at ``frequency_hz``.

    ``max(1, round(duration_s * frequency_hz))`` (Python rounding, half to
    even), the size neuralset gives a segment of that duration.
    """
    if duration_s < 0 or frequency_hz <= 0:
        raise ValueError(
            f"need duration_s >= 0 and frequency_hz > 0, got {duration_s}, {frequency_hz}"
        )
    return max(1, int(round(duration_s * frequency_hz)))


def _overlap_slice(
    array_start: float,
    array_duration: float,
    n_samples: int,
    frequency_hz: float,
    start: float,
    duration: float,
) -> slice | None:
    """Samples of a timed array (``n_samples`` at ``frequency_hz``) overlapping an interval."""
    overlap_start = max(start, array_start)
    overlap_stop = min(start + duration, array_start + array_duration)
    if overlap_stop < overlap_start:
        return None
    if overlap_stop == overlap_start and array_duration and duration:
        return None  # touching intervals do not overlap
    if not array_duration:
        return None
    start_ind = int(round((overlap_start - array_start) * frequency_hz))
    duration_ind = max(1, int(round((overlap_stop - overlap_start) * frequency_hz)))
    start_ind = min(start_ind, n_samples - duration_ind)
    if start_ind < 0:
        return None
    return slice(start_ind, start_ind + duration_ind)


def add_static_events(
    grid: np.ndarray,
    frequency_hz: float,
    starts: np.ndarray,
    durations: np.ndarray,
    values: np.ndarray,
    segment_s: float | None = None,
) -> np.ndarray:
    """Sum event vectors into a grid starting at 0 s, in place.

    Parameters
    ----------
    grid
        ``[..., T]`` array covering ``[0, T / frequency_hz)``.
    starts, durations
        ``[N]`` event times in seconds.
    values
        ``[N, ...]`` one vector per event, ``...`` matching ``grid.shape[:-1]``.
    segment_s
        Bin as the reference does at inference: in windows of ``segment_s``
        (its ``duration_trs * TR`` segments, from 0 s), each with its own
        rounding, so that an event straddling a window boundary lands in
        both windows (``None``: one window, the whole grid).
    """
    n_steps = grid.shape[-1]
    if segment_s is None:
        n_window, window_s = n_steps, n_steps / frequency_hz
    else:
        n_window = max(1, int(round(segment_s * frequency_hz)))
        window_s = float(segment_s)
    window_duration = n_window / frequency_hz
    for start, duration, value in zip(starts, durations, values, strict=True):
        start, duration = float(start), float(duration)
        first = max(0, int(start // window_s) - 1)
        last = int((start + duration) // window_s) + 1
        for k in range(first, last + 1):
            offset = k * n_window
            if offset >= n_steps:
                break
            sl = _overlap_slice(
                k * window_s, window_duration, n_window, frequency_hz, start, duration
            )
            if sl is not None and offset + sl.start < n_steps:
                stop = min(offset + sl.stop, n_steps)
                grid[..., offset + sl.start : stop] += value[..., None]
    return grid


class WindowedEventGrid:
    """:func:`add_static_events` for events coming in start order, one window in memory.

    ``add`` sums an event into the windows it touches and returns the windows
    no later event can touch (those ending more than one window before the
    event's start), as ``(first_step, [..., n])`` blocks in time order; ``finish``
    returns the rest. The blocks hold exactly what :func:`add_static_events`
    puts in those steps; windows no event touched are not returned (zero).
    """

    def __init__(
        self, n_steps: int, frequency_hz: float, segment_s: float, value_shape: tuple[int, ...]
    ) -> None:
        self.n_steps, self.frequency_hz = n_steps, frequency_hz
        self.n_window = max(1, int(round(segment_s * frequency_hz)))
        self.window_s = float(segment_s)
        self.value_shape = tuple(value_shape)
        self._windows: dict[int, np.ndarray] = {}
        self._last_start = -np.inf

    def _window(self, k: int) -> np.ndarray:
        if k not in self._windows:
            n = min(self.n_window, self.n_steps - k * self.n_window)
            self._windows[k] = np.zeros((*self.value_shape, n), np.float32)
        return self._windows[k]

    def add(self, start: float, duration: float, value: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Sum one event in; return the windows that are now final."""
        start, duration = float(start), float(duration)
        if start < self._last_start:
            raise ValueError(f"events must come in start order ({start} after {self._last_start})")
        self._last_start = start
        window_duration = self.n_window / self.frequency_hz
        first = max(0, int(start // self.window_s) - 1)
        last = int((start + duration) // self.window_s) + 1
        for k in range(first, last + 1):
            offset = k * self.n_window
            if offset >= self.n_steps:
                break
            sl = _overlap_slice(
                k * self.window_s, window_duration, self.n_window, self.frequency_hz,
                start, duration,
            )  # fmt: skip
            if sl is not None and offset + sl.start < self.n_steps:
                window = self._window(k)
                window[..., sl.start : min(sl.stop, window.shape[-1])] += value[..., None]
        return self._release(first)

    def _release(self, below: int) -> list[tuple[int, np.ndarray]]:
        done = sorted(k for k in self._windows if k < below)
        return [(k * self.n_window, self._windows.pop(k)) for k in done]

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The windows still held, in time order."""
        return self._release(len(self._windows) + max(self._windows, default=0) + 1)


def assemble_blocks(blocks: Iterable[tuple[int, np.ndarray]], n_steps: int) -> np.ndarray | None:
    """Place ``(first_step, [..., n])`` blocks into a zero grid ``[..., n_steps]`` (float32).

    ``None`` when there is no block.
    """
    grid: np.ndarray | None = None
    for first, block in blocks:
        if grid is None:
            grid = np.zeros((*block.shape[:-1], n_steps), np.float32)
        grid[..., first : first + block.shape[-1]] = block
    return grid


def timed_array_slices(
    n_grid: int, frequency_hz: float, n_data: int, start_s: float
) -> tuple[slice, slice] | None:
    """``(grid_slice, data_slice)`` where ``n_data`` samples from ``start_s`` land on the grid."""
    grid_duration, data_duration = n_grid / frequency_hz, n_data / frequency_hz
    grid_sl = _overlap_slice(0.0, grid_duration, n_grid, frequency_hz, start_s, data_duration)
    data_sl = _overlap_slice(start_s, data_duration, n_data, frequency_hz, 0.0, grid_duration)
    if grid_sl is None or data_sl is None:
        return None
    return grid_sl, data_sl


def add_timed_array(
    grid: np.ndarray, frequency_hz: float, data: np.ndarray, start_s: float
) -> np.ndarray:
    """Add ``data [..., n]`` sampled at ``frequency_hz`` from ``start_s`` into ``grid [..., T]``."""
    slices = timed_array_slices(grid.shape[-1], frequency_hz, data.shape[-1], start_s)
    if slices is not None:
        grid[..., slices[0]] += data[..., slices[1]]
    return grid


def shard_chunks(n_chunks: int, n_shards: int) -> list[list[int]]:
    """Split chunk indices ``0 .. n_chunks - 1`` into at most ``n_shards`` contiguous runs.

    Chunks are encoded independently (as in the reference), so shards made
    of whole chunks give, merged, exactly the unsharded features.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    parts = np.array_split(np.arange(n_chunks), min(n_shards, max(n_chunks, 1)))
    return [p.tolist() for p in parts if len(p)]


def chunk_bounds(
    duration_s: float, max_s: float | None = 60.0, min_s: float | None = 30.0
) -> list[tuple[float, float]]:
    """``(start_s, duration_s)`` of the chunks a long medium is encoded in.

    ``max_s=None`` gives one chunk (no chunking).
    """
    if max_s is None or duration_s <= max_s:
        return [(0.0, float(duration_s))]
    cuts = [float(t) for t in np.arange(0.0, duration_s, max_s)[1:] if 0 < t < duration_s]
    if min_s:
        # the reference rounds the gaps to the audio sample precision (1e-6 s)
        before = np.round(np.diff(cuts, prepend=0.0), 6)
        after = np.round(np.diff(cuts, append=duration_s), 6)
        cuts = [t for t, b, a in zip(cuts, before, after, strict=True) if b >= min_s and a >= min_s]
    bounds = [0.0, *cuts, float(duration_s)]
    return [(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def chunks_grid_extent(
    duration_s: float,
    frequency_hz: float,
    chunks: Iterable[int],
    max_s: float | None = 60.0,
    min_s: float | None = 30.0,
) -> tuple[int, int] | None:
    """``(first_step, stop_step)`` of the grid that the given chunks' features cover.

    ``None`` when they cover no step (or ``chunks`` is empty).
    """
    bounds = chunk_bounds(duration_s, max_s, min_s)
    n_steps = n_feature_steps(duration_s, frequency_hz)
    spans = []
    for c in chunks:
        start, length = bounds[c]
        n = n_feature_steps(length, frequency_hz)
        slices = timed_array_slices(n_steps, frequency_hz, n, start)
        if slices is not None:
            spans.append((slices[0].start, slices[0].stop))
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans)


def clip_frame_times(
    chunk_duration_s: float, frequency_hz: float, clip_duration_s: float, n_frames: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(k, frame_times [n_frames])`` for each 2 Hz sample of a video chunk.

    Sample ``k`` ends at ``t_k = linspace(0, D, n + 1)[k + 1]`` (``n`` steps
    of the chunk, ``D`` its duration, so the grid is stretched by
    ``D / (n / f)`` as in neuralset); its frames are at
    ``max(0, t_k - j * clip_duration_s / n_frames)``, ``j = n_frames - 1 .. 0``,
    in seconds from the chunk start.
    """
    n_steps = n_feature_steps(chunk_duration_s, frequency_hz)
    ends = np.linspace(0, chunk_duration_s, n_steps + 1)[1:]
    subtimes = [j / n_frames * clip_duration_s for j in reversed(range(n_frames))]
    for k, t in enumerate(ends):
        yield k, np.array([max(0.0, t - s) for s in subtimes])

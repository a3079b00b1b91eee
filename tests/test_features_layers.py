"""Layer selection/aggregation and the 2 Hz grid, against neuralset 0.0.2's own code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tribe_core.features.layers import aggregate_layers, layer_indices, n_layer_groups
from tribe_core.features.timing import (
    add_static_events,
    add_timed_array,
    chunk_bounds,
    clip_frame_times,
    n_feature_steps,
)

CASES = [
    # (n_hidden_states, layers, aggregation, cache_n_layers)
    (29, [0.5, 0.75, 1.0], "group_mean", None),  # Llama-3.2-3B, released
    (29, [0.5, 0.75, 1.0], "group_mean", 20),
    (41, [0.5, 0.75, 1.0], "group_mean", 20),  # V-JEPA2 ViT-G
    (25, [0.5, 0.75, 1.0], "group_mean", None),  # w2v-BERT 2.0
    (29, 2 / 3, "mean", None),  # mini
    (25, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "group_mean", None),
    (6, [0.5, 0.75, 1.0], "mean", None),
    (6, [0.5, 0.75, 1.0], None, None),
    (6, [0.5, 0.75, 1.0], "sum", None),
    (6, [0.1, 0.12], "group_mean", None),  # duplicate indices collapse
]


def test_released_and_mini_layouts() -> None:
    assert n_layer_groups(29, [0.5, 0.75, 1.0], "group_mean") == 2
    assert layer_indices(29, [0.5, 0.75, 1.0]) == [14, 21, 28]
    assert n_layer_groups(29, 2 / 3, "mean") == 1
    assert n_layer_groups(25, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "group_mean") == 5
    assert n_layer_groups(6, [0.5, 0.75, 1.0], None) == 3
    with pytest.raises(ValueError, match="layer_aggregation"):
        n_layer_groups(6, 0.5, "median")
    with pytest.raises(ValueError, match="fractions"):
        n_layer_groups(6, [1.5], "mean")


def test_group_mean_by_hand() -> None:
    hs = np.arange(6 * 3, dtype=np.float32).reshape(6, 3)  # hidden state i = [3i, 3i+1, 3i+2]
    out = aggregate_layers(hs, [0.5, 0.75, 1.0], "group_mean")  # indices 2, 3, 5
    np.testing.assert_allclose(out, [hs[2], hs[3:6].mean(0)])
    torch_out = aggregate_layers(torch.from_numpy(hs), [0.5, 0.75, 1.0], "group_mean")
    np.testing.assert_allclose(torch_out.numpy(), out)
    single = aggregate_layers(hs, 2 / 3, "mean")
    np.testing.assert_allclose(single, hs[[3]])


@pytest.mark.parametrize(("n", "layers", "aggregation", "cache_n"), CASES)
def test_aggregation_equals_neuralset(n: int, layers, aggregation, cache_n) -> None:  # noqa: ANN001
    mixin = pytest.importorskip("neuralset.extractors.base").HuggingFaceMixin
    rng = np.random.default_rng(0)
    hs = rng.standard_normal((n, 7, 5)).astype(np.float32)
    oracle = mixin.model_construct(
        model_name="gpt2", layers=layers, layer_aggregation=aggregation, cache_n_layers=cache_n
    )
    want = oracle._aggregate_layers(oracle._layer_subselection(hs))
    if want.ndim == 2:
        want = want[None]
    got = aggregate_layers(hs, layers, aggregation, cache_n)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.shape[0] == n_layer_groups(n, layers, aggregation, cache_n)


def test_n_feature_steps_rounds_half_to_even() -> None:
    assert n_feature_steps(10.0, 2.0) == 20
    assert n_feature_steps(10.25, 2.0) == 20  # 20.5 -> 20
    assert n_feature_steps(10.75, 2.0) == 22  # 21.5 -> 22
    assert n_feature_steps(0.1, 2.0) == 1
    with pytest.raises(ValueError):
        n_feature_steps(1.0, 0.0)


def test_chunk_bounds_follow_chunk_events() -> None:
    assert chunk_bounds(45.0) == [(0.0, 45.0)]
    assert chunk_bounds(100.0) == [(0.0, 60.0), (60.0, 40.0)]
    assert chunk_bounds(80.0) == [(0.0, 80.0)]
    assert chunk_bounds(130.0) == [(0.0, 60.0), (60.0, 70.0)]
    assert chunk_bounds(200.0) == [(0.0, 60.0), (60.0, 60.0), (120.0, 80.0)]
    assert chunk_bounds(200.0, None) == [(0.0, 200.0)]


def test_static_events_equal_neuralset_timed_array() -> None:
    base = pytest.importorskip("neuralset.base")
    rng = np.random.default_rng(1)
    n, duration = 40, 9.7
    starts = np.round(rng.uniform(-0.3, 9.9, n), 3)
    durations = np.round(rng.uniform(0.0, 0.8, n), 3)
    starts[:4] = [0.25, 0.75, 1.25, 9.6]  # half-sample edges, past-the-end word
    values = rng.standard_normal((n, 2, 3)).astype(np.float32)
    grid = np.zeros((2, 3, n_feature_steps(duration, 2.0)), np.float32)
    add_static_events(grid, 2.0, starts, durations, values)
    ref = base.TimedArray(frequency=2.0, start=0.0, duration=duration, aggregation="sum")
    for s, d, v in zip(starts, durations, values, strict=True):
        ref += base.TimedArray(frequency=0, start=float(s), duration=float(d), data=v)
    np.testing.assert_allclose(grid, ref.data, rtol=1e-6)


def test_segmented_binning_equals_neuralset_segments() -> None:
    """Words straddling a segment boundary count in both segments, as at inference."""
    base = pytest.importorskip("neuralset.base")
    rng = np.random.default_rng(3)
    n, duration, segment = 30, 9.5, 2.0
    starts = np.round(rng.uniform(0, 9.4, n), 3)
    durations = np.round(rng.uniform(0.0, 0.9, n), 3)
    starts[:4], durations[:4] = [1.8, 3.9, 5.75, 6.0], [0.4, 0.2, 0.3, 0.0]  # on boundaries
    values = rng.standard_normal((n, 2)).astype(np.float32)
    grid = np.zeros((2, n_feature_steps(duration, 2.0)), np.float32)
    add_static_events(grid, 2.0, starts, durations, values, segment_s=segment)
    pieces = []
    for k in range(5):  # the reference's strided segments, each binned on its own
        ref = base.TimedArray(frequency=2.0, start=k * segment, duration=segment, aggregation="sum")
        for s, d, v in zip(starts, durations, values, strict=True):
            ref += base.TimedArray(frequency=0, start=float(s), duration=float(d), data=v)
        pieces.append(ref.data if ref.data.size else np.zeros((2, 4), np.float32))
    want = np.concatenate(pieces, axis=-1)[..., : grid.shape[-1]]
    np.testing.assert_allclose(grid, want, rtol=1e-6)
    whole = add_static_events(np.zeros_like(grid), 2.0, starts, durations, values)
    assert not np.allclose(whole, grid)  # the straddling words make the difference


def test_timed_array_placement_equals_neuralset() -> None:
    base = pytest.importorskip("neuralset.base")
    rng = np.random.default_rng(2)
    grid = np.zeros((3, 41), np.float32)
    ref = base.TimedArray(frequency=2.0, start=0.0, duration=20.5, aggregation="sum")
    for start, n in [(0.0, 12), (6.0, 8), (10.0, 31)]:  # the last runs past the end
        data = rng.standard_normal((3, n)).astype(np.float32)
        add_timed_array(grid, 2.0, data, start)
        ref += base.TimedArray(frequency=2.0, start=start, data=data)
    np.testing.assert_allclose(grid, ref.data, rtol=1e-6)


def test_clip_frame_times() -> None:
    samples = list(clip_frame_times(2.0, 2.0, 4.0, 64))
    assert [k for k, _ in samples] == [0, 1, 2, 3]
    k, times = samples[-1]
    assert times.shape == (64,)
    assert times[-1] == pytest.approx(2.0)  # the clip ends at its sample
    assert times[0] == 0.0  # clamped history
    np.testing.assert_allclose(np.diff(times[-10:]), 4.0 / 64)
    # a chunk whose duration is not a multiple of 0.5 s stretches the sample times
    stretched = [t[-1] for _, t in clip_frame_times(4.3, 2.0, 4.0, 64)]
    np.testing.assert_allclose(stretched, np.linspace(0, 4.3, 10)[1:])

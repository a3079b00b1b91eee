"""Tests of tribe_core.segments: segmentation, stitching, empty TRs, timing table, store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tribe_core.demo_models.tribe import save_random_checkpoint
from tribe_core.encoder import TribeEncoder, load_encoder
from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.segments import (
    TR_ARRAYS,
    PredictionResult,
    predict_stimulus,
    read_predictions,
    write_predictions,
)

DIMS = {"text": (2, 12), "audio": (2, 8), "video": (1, 10)}
SEG = 10  # TRs per segment (n_output_timesteps of the tiny checkpoint)
V = 24


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> TribeEncoder:
    path = save_random_checkpoint(
        tmp_path_factory.mktemp("enc") / "m",
        feature_dims=DIMS,
        hidden=96,
        depth=1,
        heads=3,
        n_outputs=V,
        low_rank_head=6,
        n_output_timesteps=SEG,
        data_config={"duration_trs": SEG},
        seed=1,
    )
    return load_encoder(path)


def _features(n_steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: rng.standard_normal((L, D, n_steps)).astype(np.float32) for k, (L, D) in DIMS.items()
    }


def _events(duration_s: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"type": ["Audio", "Video"], "start": [0.0, 0.0], "duration": [duration_s, duration_s]}
    )


def _direct(
    encoder: TribeEncoder, feats: dict[str, np.ndarray | None], first_tr: int
) -> np.ndarray:
    """The encoder on one zero-padded segment starting at ``first_tr``: ``[SEG, V]``."""
    batch = {}
    for name, value in feats.items():
        if value is None:
            continue
        seg = np.zeros((1, *value.shape[:2], 2 * SEG), dtype=np.float32)
        piece = value[:, :, 2 * first_tr : 2 * first_tr + 2 * SEG]
        seg[0, :, :, : piece.shape[2]] = piece
        batch[name] = torch.from_numpy(seg)
    with torch.inference_mode():
        return encoder(batch)[0].T.numpy()


def test_short_stimulus_shorter_than_one_segment(encoder: TribeEncoder) -> None:
    feats = _features(7)  # 3.5 s at 2 Hz
    result = predict_stimulus(encoder, feats, _events(3.5), duration_trs=SEG)
    assert result.predictions.shape == (4, V) and result.predictions.dtype == np.float32
    # One 10-TR segment, but the stimulus has 4 TRs: the padding is no TR of it.
    assert len(result.trs) == result.n_trs == 4
    assert result.trs["kept"].tolist() == [True] * 4
    np.testing.assert_allclose(
        result.predictions, _direct(encoder, feats, 0)[:4], rtol=0, atol=1e-6
    )


def test_non_multiple_length_and_batching(encoder: TribeEncoder) -> None:
    feats = _features(46)  # 23 s: 3 segments, the last one mostly padding
    one = predict_stimulus(encoder, feats, _events(23.0), duration_trs=SEG, batch_size=1)
    two = predict_stimulus(encoder, feats, _events(23.0), duration_trs=SEG, batch_size=2)
    assert one.predictions.shape == (23, V)
    assert one.trs["segment"].tolist() == [0] * 10 + [1] * 10 + [2] * 3
    np.testing.assert_allclose(one.predictions, two.predictions, rtol=0, atol=1e-6)
    want = np.concatenate([_direct(encoder, feats, s) for s in (0, 10, 20)])[:23]
    np.testing.assert_allclose(one.predictions, want, rtol=0, atol=1e-6)


def test_overlap_is_stitched_by_trimming_at_the_midpoint(encoder: TribeEncoder) -> None:
    feats = _features(40)  # 20 s; stride 6 -> segments at TR 0, 6, 12
    result = predict_stimulus(encoder, feats, _events(20.0), duration_trs=SEG, overlap_trs=4)
    trs = result.trs
    assert len(trs) == 20 and result.predictions.shape == (20, V)
    # Overlap [6, 10) splits 6,7 | 8,9 ; overlap [12, 16) splits 12,13 | 14,15.
    assert trs["segment"].tolist() == [0] * 8 + [1] * 6 + [2] * 6
    direct = {s: _direct(encoder, feats, s) for s in (0, 6, 12)}
    for row in trs[trs["kept"]].itertuples():
        start = (0, 6, 12)[row.segment]
        np.testing.assert_allclose(
            result.predictions[row.prediction_row], direct[start][row.tr_index - start], atol=1e-6
        )
    # The two copies of an overlapping TR really differ: trimming is a choice.
    assert np.abs(direct[0][8] - direct[6][2]).max() > 1e-3


def test_empty_trs_are_dropped_like_the_reference(encoder: TribeEncoder) -> None:
    feats = _features(40)
    words = pd.DataFrame(
        {
            "type": ["Word", "Word", "Word"],
            "start": [0.2, 3.9, 12.0],
            "duration": [0.5, 1.1, 0.0],  # 3.9-5.0 touches TRs 3 and 4 only; 0-s event none
        }
    )
    result = predict_stimulus(encoder, feats, words, duration_trs=SEG, duration_s=20.0)
    kept = result.trs["kept"].to_numpy()
    assert np.flatnonzero(kept).tolist() == [0, 3, 4]
    full = predict_stimulus(encoder, feats, _events(20.0), duration_trs=SEG)
    np.testing.assert_array_equal(result.predictions, full.predictions[[0, 3, 4]])
    assert result.trs["prediction_row"].tolist()[:5] == [0, -1, -1, 1, 2]
    assert result.trs["segment"].tolist()[:5] == [0, -1, -1, 0, 0]  # -1: no output kept
    assert len(result.trs) == 20  # duration_s=20.0


def test_timing_table_and_hemodynamic_offset(encoder: TribeEncoder) -> None:
    result = predict_stimulus(
        encoder, _features(30), _events(15.0), duration_trs=SEG, tr_s=1.0, hemodynamic_offset_s=5.0
    )
    trs = result.trs
    assert list(trs.columns[:5]) == ["tr_index", "tr_start_s", "response_time_s", "segment", "kept"]
    np.testing.assert_array_equal(trs["tr_start_s"], np.arange(15, dtype=float))
    np.testing.assert_array_equal(trs["response_time_s"], np.arange(15, dtype=float) + 5.0)
    assert trs.attrs["hemodynamic_offset_s"] == 5.0 == result.hemodynamic_offset_s
    assert trs["kept"].sum() == 15


def test_absent_modality_is_zero_filled(encoder: TribeEncoder) -> None:
    feats: dict[str, np.ndarray | None] = {**_features(20), "audio": None}
    result = predict_stimulus(encoder, feats, _events(10.0), duration_trs=SEG)
    np.testing.assert_allclose(result.predictions, _direct(encoder, feats, 0), atol=1e-6)
    missing = {k: v for k, v in feats.items() if k != "audio"}
    again = predict_stimulus(encoder, missing, _events(10.0), duration_trs=SEG)
    np.testing.assert_array_equal(result.predictions, again.predictions)


def test_every_modality_absent_gives_the_zero_filled_baseline(encoder: TribeEncoder) -> None:
    """Ablating the last modality: the encoder's output with all inputs zero-filled."""
    import copy

    nothing: dict[str, np.ndarray | None] = dict.fromkeys(DIMS)
    with pytest.raises(TribeInputError, match="every modality"):
        predict_stimulus(encoder, nothing, _events(23.0), duration_trs=SEG)
    base = predict_stimulus(
        encoder, nothing, _events(23.0), duration_trs=SEG, batch_size=2, allow_all_absent=True
    )
    assert base.predictions.shape == (23, V) and np.isfinite(base.predictions).all()
    # Same input (zeros) in every segment: the same maps, and not a constant map.
    np.testing.assert_array_equal(base.predictions[:10], base.predictions[10:20])
    assert np.abs(np.diff(base.predictions[:10], axis=0)).max() > 1e-4
    # Independently: an encoder whose text projector is all zeros (weights and bias)
    # turns any text features into the zero fill, so fed text only it is the baseline.
    zeroed = copy.deepcopy(encoder)
    zeroed.__dict__.pop("_prepared", None)
    with torch.no_grad():
        zeroed.projectors["text"].weight.zero_()
        zeroed.projectors["text"].bias.zero_()
    text_only = {"text": _features(46)["text"]}
    want = predict_stimulus(zeroed, text_only, _events(23.0), duration_trs=SEG)
    np.testing.assert_array_equal(base.predictions, want.predictions)
    # ... which real text features through the real projector are not.
    real = predict_stimulus(encoder, text_only, _events(23.0), duration_trs=SEG)
    assert np.abs(real.predictions - base.predictions).max() > 1e-4


def test_store_tr_rows_line_up_with_predictions(tmp_path: Path, encoder: TribeEncoder) -> None:
    """A 6-TR stimulus in a 10-TR segment, TRs 2-3 without events: 4 rows everywhere."""
    import zarr

    feats = _features(12)  # 6 s
    words = pd.DataFrame({"type": "Word", "start": [0.0, 4.0], "duration": [2.0, 2.0]})
    result = predict_stimulus(encoder, feats, words, duration_trs=SEG, duration_s=6.0)
    path = write_predictions(tmp_path / "predictions.zarr", result, {"stimulus": "six"})
    group = zarr.open_group(str(path), mode="r")
    assert group["predictions"].shape == (4, V)
    assert {name: group[name].shape for name in TR_ARRAYS} == dict.fromkeys(TR_ARRAYS, (4,))
    assert group["tr_index"][:].tolist() == [0, 1, 4, 5]
    assert group["tr_start_s"][:].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert group["tr_segment"][:].tolist() == [0, 0, 0, 0]
    assert (group.attrs["n_trs"], group.attrs["n_kept_trs"]) == (6, 4)
    back = read_predictions(path)
    assert back.n_trs == 6 and back.trs["kept"].tolist() == [True, True, False, False, True, True]
    pd.testing.assert_frame_equal(back.trs, result.trs)
    np.testing.assert_array_equal(back.predictions, result.predictions)  # byte for byte
    np.testing.assert_array_equal(back.predictions, _direct(encoder, feats, 0)[[0, 1, 4, 5]])


def test_store_of_the_padded_layout_is_read_cropped(tmp_path: Path) -> None:
    """predictions.zarr written before the TR table lined up (tr_kept over padded segments)."""
    from tribe_core.io.zarr_store import write_arrays

    rows = np.arange(4 * V, dtype=np.float32).reshape(4, V)
    kept = np.array([True, True, False, True, True] + [False] * 5)
    arrays = {
        "predictions": rows,
        "tr_start_s": np.arange(10.0),
        "tr_response_time_s": np.arange(10.0) + 5.0,
        "tr_segment": np.zeros(10, dtype=np.int64),
        "tr_kept": kept,
    }
    attrs = {"tr_s": 1.0, "hemodynamic_offset_s": 5.0, "n_trs": 10, "duration_s": 4.6}
    path = write_arrays(tmp_path / "old.zarr", arrays, attrs)
    back = read_predictions(path)
    assert back.n_trs == 5 and back.trs["kept"].tolist() == [True, True, False, True, True]
    assert back.trs["prediction_row"].tolist() == [0, 1, -1, 2, 3]
    np.testing.assert_array_equal(back.predictions, rows)
    # A table that does not line up with the rows is refused, naming the store.
    arrays["tr_kept"] = np.ones(10, dtype=bool)
    bad = write_arrays(tmp_path / "bad.zarr", arrays, attrs)
    with pytest.raises(TribeInputError, match="does not line up") as info:
        read_predictions(bad)
    assert "bad.zarr" in str(info.value)


def test_write_read_predictions_round_trip(tmp_path: Path, encoder: TribeEncoder) -> None:
    import zarr

    result = predict_stimulus(encoder, _features(46), _events(23.0), duration_trs=SEG)
    path = write_predictions(tmp_path / "predictions.zarr", result, {"stimulus": "clip"})
    group = zarr.open_group(str(path), mode="r")
    # Every TR array has one row per prediction row (not the padded 30 TRs of 3 segments).
    for name in ("tr_index", "tr_start_s", "tr_response_time_s", "tr_segment"):
        assert group[name].shape == (23,), name
    assert group["predictions"].shape == (23, V) and "tr_kept" not in group
    np.testing.assert_array_equal(group["tr_start_s"][:], np.arange(23.0))
    np.testing.assert_array_equal(group["tr_response_time_s"][:], np.arange(23.0) + 5.0)
    attrs = dict(group.attrs)
    assert attrs["hemodynamic_offset_s"] == 5.0 and attrs["n_vertices"] == V
    assert attrs["stimulus"] == "clip" and attrs["n_kept_trs"] == attrs["n_trs"] == 23
    back = read_predictions(path)
    assert isinstance(back, PredictionResult)
    np.testing.assert_array_equal(back.predictions, result.predictions)
    pd.testing.assert_frame_equal(back.trs, result.trs)


@pytest.mark.parametrize("precision", ["tf32", "bf16", "fp16"])
def test_fast_precisions_stay_close(encoder: TribeEncoder, precision: str) -> None:
    feats = _features(46)
    ref = predict_stimulus(encoder, feats, _events(23.0), duration_trs=SEG)
    fast = predict_stimulus(encoder, feats, _events(23.0), duration_trs=SEG, precision=precision)
    err = np.abs(fast.predictions - ref.predictions).max() / np.abs(ref.predictions).max()
    assert err < {"tf32": 1e-5, "bf16": 2e-2, "fp16": 3e-3}[precision]
    assert next(encoder.parameters()).dtype == torch.float32  # the loaded encoder is untouched


def test_bad_inputs_name_stimulus_and_modality(encoder: TribeEncoder) -> None:
    ev = _events(10.0)
    feats = _features(20)
    cases = [
        ({**feats, "text": np.zeros((3, 12, 20), np.float32)}, "modality 'text'.*3 layer groups"),
        ({**feats, "audio": np.zeros((2, 9, 20), np.float32)}, "modality 'audio'.*expects 2 x 8"),
        ({**feats, "video": np.zeros((1, 10, 0), np.float32)}, "modality 'video'.*empty"),
        ({**feats, "text": np.full((2, 12, 20), np.nan, np.float32)}, "'text'.*NaN"),
        ({**feats, "video": np.zeros((10, 20), np.float32)}, "'video'.*\\[L, D, T\\]"),
        ({"text": None, "audio": None}, "every modality"),
        ({**feats, "smell": feats["text"]}, "unknown modality"),
    ]
    for bad, pattern in cases:
        with pytest.raises(TribeInputError, match="stimulus 'clip7'.*" + pattern):
            predict_stimulus(encoder, bad, ev, duration_trs=SEG, stimulus="clip7")
    with pytest.raises(TribeInputError, match="events table is empty"):
        predict_stimulus(encoder, feats, ev.iloc[:0], duration_trs=SEG, stimulus="clip7")
    with pytest.raises(TribeConfigError, match="duration_trs=100"):
        predict_stimulus(encoder, feats, ev, stimulus="clip7")
    with pytest.raises(TribeConfigError, match="overlap_trs"):
        predict_stimulus(encoder, feats, ev, duration_trs=SEG, overlap_trs=SEG)


@pytest.mark.slow
def test_compiled_inference_matches_eager(encoder: TribeEncoder) -> None:
    feats = _features(46)
    eager = predict_stimulus(encoder, feats, _events(23.0), duration_trs=SEG, precision="tf32")
    compiled = predict_stimulus(
        encoder,
        feats,
        _events(23.0),
        duration_trs=SEG,
        precision="tf32",
        compile=True,
        batch_size=2,
    )
    np.testing.assert_allclose(compiled.predictions, eager.predictions, rtol=0, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16", "fp16"])
def test_cuda_matches_cpu(encoder: TribeEncoder, precision: str) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    feats = _features(46)
    ref = predict_stimulus(encoder, feats, _events(23.0), duration_trs=SEG)
    got = predict_stimulus(
        encoder, feats, _events(23.0), duration_trs=SEG, precision=precision, device="cuda"
    )
    err = np.abs(got.predictions - ref.predictions).max() / np.abs(ref.predictions).max()
    assert err < {"fp32": 1e-5, "tf32": 2e-3, "bf16": 2e-2, "fp16": 3e-3}[precision]


def test_prepared_model_is_reused_across_stimuli(encoder: TribeEncoder) -> None:
    from tribe_core.encoder.inference import prepare_encoder

    predict_stimulus(encoder, _features(20), _events(10.0), duration_trs=SEG, precision="bf16")
    first = prepare_encoder(encoder, precision="bf16", cached=True)
    predict_stimulus(encoder, _features(30), _events(15.0), duration_trs=SEG, precision="bf16")
    assert prepare_encoder(encoder, precision="bf16", cached=True) is first
    assert first is not encoder and "_prepared" not in encoder.state_dict()


def test_kept_trs_matches_neuralset_overlap_rule() -> None:
    from tribe_core.segments import kept_trs

    rng = np.random.default_rng(3)
    starts = np.concatenate([rng.uniform(-2, 60, 300), np.arange(0.0, 50.0, 7.0)])
    durations = np.concatenate([rng.exponential(0.4, 300) * (rng.random(300) > 0.2), np.zeros(8)])
    for tr_s in (1.0, 1.49):
        n = 45
        tr = np.arange(n) * tr_s
        # neuralset's _EventStore.overlapping: start < stop_window and stop > start_window.
        want = (starts[None] < tr[:, None] + tr_s) & (starts[None] + durations[None] > tr[:, None])
        got = kept_trs(n, tr_s, starts, starts + durations)
        np.testing.assert_array_equal(got, want.any(axis=1))


def test_memory_budget_shrinks_the_batch_with_a_warning(
    encoder: TribeEncoder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch over the (forced, CPU) memory budget falls back to smaller batches."""
    feats, events = _features(2 * SEG * 5), _events(SEG * 5)
    full = predict_stimulus(encoder, feats, events, duration_trs=SEG, batch_size=8)
    # One segment: inputs (2*12 + 2*8 + 1*10) * 20 steps + outputs 10 * 24, float32.
    per_segment_mb = 4 * ((24 + 16 + 10) * 2 * SEG + SEG * V) / 2**20
    monkeypatch.setenv("TRIBEFLOW_MEMORY_BUDGET_MB", str(2.5 * per_segment_mb))
    with caplog.at_level("WARNING"):
        small = predict_stimulus(encoder, feats, events, duration_trs=SEG, batch_size=8)
    assert any("segments" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    np.testing.assert_allclose(small.predictions, full.predictions, rtol=1e-5, atol=1e-6)


def test_streamed_store_and_lazy_features_equal_in_memory(
    encoder: TribeEncoder, tmp_path: Path
) -> None:
    """Rows written batch by batch from lazy Zarr features == the in-memory prediction."""
    from tribe_core.io.zarr_store import open_feature_array, open_feature_store
    from tribe_core.segments import open_predictions_store

    feats = _features(93)  # 46.5 s: 5 segments, the last one partial
    words = pd.DataFrame(  # TRs 20..29 hold no event: dropped in the middle of the run
        {"type": "Word", "start": [0.0, 30.0], "duration": [20.0, 16.5]}
    )
    whole = predict_stimulus(encoder, feats, words, duration_trs=SEG, batch_size=2)
    lazy = {}
    for name, value in feats.items():
        with open_feature_store(tmp_path / f"{name}.zarr", value.shape[-1], {}, chunk_len=16) as s:
            s.write(0, value)
        lazy[name] = open_feature_array(tmp_path / f"{name}.zarr")[0]
    out = tmp_path / "predictions.zarr"
    with open_predictions_store(out, chunk_trs=7) as store:
        streamed = predict_stimulus(
            encoder, lazy, words, duration_trs=SEG, batch_size=2, allocate=store.allocate
        )
        assert not out.exists()
        store.finish(streamed, {"stimulus": "s"})
    back = read_predictions(out)
    assert back.predictions.shape == (37, V) and not back.trs["kept"].iloc[20:30].any()
    np.testing.assert_allclose(back.predictions, whole.predictions, rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(back.trs, whole.trs, check_dtype=False)

    with pytest.raises(RuntimeError, match="without finish"):
        with open_predictions_store(tmp_path / "unfinished.zarr") as store:
            store.allocate((3, V))
    assert not (tmp_path / "unfinished.zarr").exists()

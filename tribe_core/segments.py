"""Segmented inference over a whole stimulus, and the ``predictions.zarr`` store.

Reference semantics (``TribeModel.predict`` in ``tribev2/demo_utils.py`` of
https://github.com/facebookresearch/tribev2, on neuralset 0.0.2), and our choices:

- **Timeline.** TR ``k`` covers stimulus time ``[k * tr_s, (k + 1) * tr_s)``
  (``tr_start_s``). Segments of ``duration_trs`` TRs start at 0 s with a stride
  of ``duration_trs - overlap_trs``; there are just enough to cover the
  stimulus, and the last one is zero-padded past the end of the features, as
  neuralset pads a window that leaves the recording. Feature step ``j`` (2 Hz)
  is time ``j / feature_frequency_hz``.
- **Stimulus TRs.** The stimulus has ``n_trs = ceil(duration_s / tr_s)`` TRs
  and the TR table covers exactly those: the zero-padded tail of the last
  segment is no part of it, even where an event runs past the end.
- **Hemodynamic offset.** The reference trains with the fMRI extractor's
  ``offset: 5``: the BOLD sample measured at time ``t + 5 s`` is placed on the
  stimulus timeline at ``t`` (``FmriExtractor`` shifts ``start - offset``).
  So prediction row ``k`` is *indexed by stimulus time* ``tr_start_s`` and
  predicts the BOLD response a scanner would record at
  ``response_time_s = tr_start_s + hemodynamic_offset_s``. Both columns are in
  the TR table; nothing is shifted in the array itself.
- **Empty TRs.** As the reference with ``remove_empty_segments=True``: every
  TR is a ``[start, start + tr_s)`` window and is kept only if at least one
  event of the events table overlaps it (neuralset's test: ``event.start <
  stop and event.start + event.duration > start``). In practice this drops
  the zero-padded tail of the last segment and any stretch without events.
- **Overlap stitching: trim, not average.** With ``overlap_trs > 0`` a TR lies
  in several segments; we keep the copy from the segment where it is most
  central (ties: the earlier segment), i.e. each overlap is split at its
  midpoint. The encoder is a bidirectional transformer with a learnt
  time-position embedding, so a TR near a segment edge sees one-sided context
  and edge positions; averaging would blend those poorer estimates in, whereas
  trimming keeps every prediction an actual model output. With
  ``overlap_trs=0`` (the reference's inference setting) both are identical.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch

from tribe_core.batching import run_with_batch_fallback
from tribe_core.encoder.inference import check_precision, precision_context, prepare_encoder
from tribe_core.encoder.model import TribeEncoder
from tribe_core.errors import TribeConfigError, TribeInputError

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
#: Arrays of ``predictions.zarr`` with one row per row of ``predictions`` (kept TRs).
TR_ARRAYS = ("tr_index", "tr_start_s", "tr_response_time_s", "tr_segment")


@dataclasses.dataclass
class PredictionResult:
    """Predicted responses of one stimulus.

    Attributes
    ----------
    predictions
        ``[n_kept_trs, n_vertices]`` float32, kept TRs in time order.
    trs
        One row per TR of the stimulus (``n_trs`` rows, before dropping empty
        TRs): ``tr_index``, ``tr_start_s`` (stimulus time), ``response_time_s``
        (``tr_start_s + hemodynamic_offset_s``), ``segment`` (segment whose
        output was kept, -1 if dropped), ``kept`` (bool) and ``prediction_row``
        (row in ``predictions``, -1 if dropped).
        ``trs.attrs["hemodynamic_offset_s"]`` repeats the offset.
    hemodynamic_offset_s
        Lag between stimulus time and the predicted BOLD sample.
    tr_s
        Repetition time in seconds.
    """

    predictions: np.ndarray
    trs: pd.DataFrame
    hemodynamic_offset_s: float = 5.0
    tr_s: float = 1.0

    @property
    def n_vertices(self) -> int:
        return int(self.predictions.shape[1])

    @property
    def n_trs(self) -> int:
        """TRs of the stimulus, kept or not (``ceil(duration_s / tr_s)``)."""
        return len(self.trs)


def _check_features(
    encoder: TribeEncoder,
    features: Mapping[str, Any],
    stimulus: str | None,
    allow_all_absent: bool = False,
) -> dict[str, Any]:
    unknown = [k for k in features if k not in encoder.feature_dims]
    if unknown:
        raise TribeInputError(
            f"unknown modality {unknown}; the checkpoint expects {list(encoder.feature_dims)}",
            stimulus=stimulus,
        )
    present: dict[str, Any] = {}
    for name, want in encoder.feature_dims.items():
        value = features.get(name)
        if value is None:
            continue
        if not hasattr(value, "shape") or not hasattr(value, "ndim"):
            value = np.asarray(value)  # lists; numpy and Zarr arrays stay lazy
        if value.ndim != 3:
            raise TribeInputError(
                f"modality {name!r}: features must be [L, D, T], got shape {value.shape}",
                stimulus=stimulus,
            )
        if value.shape[0] != want[0] or value.shape[1] != want[1]:
            raise TribeInputError(
                f"modality {name!r}: features have {value.shape[0]} layer groups x "
                f"{value.shape[1]} dims, the checkpoint expects {want[0]} x {want[1]} "
                "(check the feature model and layer settings)",
                stimulus=stimulus,
            )
        if value.shape[2] == 0:
            raise TribeInputError(
                f"modality {name!r}: the feature store is empty (0 time steps)",
                stimulus=stimulus,
            )
        present[name] = value  # finiteness is checked piece by piece as segments are cut
    if not present and not allow_all_absent:
        raise TribeInputError(
            f"no features: every modality of {list(encoder.feature_dims)} is absent",
            stimulus=stimulus,
        )
    return present


def _check_events(events: pd.DataFrame, stimulus: str | None) -> tuple[np.ndarray, np.ndarray]:
    missing = [c for c in ("start", "duration") if c not in events.columns]
    if missing:
        raise TribeInputError(f"events table lacks columns {missing}", stimulus=stimulus)
    starts = events["start"].to_numpy(dtype=np.float64)
    stops = starts + events["duration"].to_numpy(dtype=np.float64)
    if not len(starts):
        raise TribeInputError("events table is empty: nothing to predict", stimulus=stimulus)
    if not (np.isfinite(starts).all() and np.isfinite(stops).all()):
        raise TribeInputError("events table has NaN start/duration values", stimulus=stimulus)
    return starts, stops


def segment_starts(n_trs: int, duration_trs: int, overlap_trs: int) -> np.ndarray:
    """First TR of each segment so that ``[0, n_trs)`` is covered (at least one segment)."""
    if not 0 <= overlap_trs < duration_trs:
        raise TribeConfigError(
            f"overlap_trs must be in [0, duration_trs={duration_trs}), got {overlap_trs}"
        )
    stride = duration_trs - overlap_trs
    n_segments = max(1, math.ceil(max(n_trs - duration_trs, 0) / stride) + 1)
    return np.arange(n_segments, dtype=np.int64) * stride


def assign_trs(starts: np.ndarray, duration_trs: int) -> np.ndarray:
    """For each TR of the covered timeline, the segment it is taken from (most central)."""
    n_trs = int(starts[-1]) + duration_trs
    t = np.arange(n_trs)[:, None]
    pos = t - starts[None, :]
    inside = (pos >= 0) & (pos < duration_trs)
    centrality = np.where(inside, np.minimum(pos, duration_trs - 1 - pos), -1)
    return centrality.argmax(axis=1)  # argmax takes the first (earlier) on ties


def kept_trs(n_trs: int, tr_s: float, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Boolean ``[n_trs]``: TR ``k`` overlaps an event (``start < (k+1)*tr and stop > k*tr``).

    Interval counting (difference array), linear in TRs + events, so a
    two-hour film with tens of thousands of words costs nothing.
    """
    first = np.floor(starts / tr_s).astype(np.int64)  # smallest k with (k+1)*tr > start
    stop = np.ceil(stops / tr_s).astype(np.int64)  # largest k with k*tr < stop, plus one
    first, stop = np.clip(first, 0, n_trs), np.clip(stop, 0, n_trs)
    valid = stop > first
    count = np.zeros(n_trs + 1, dtype=np.int64)
    np.add.at(count, first[valid], 1)
    np.add.at(count, stop[valid], -1)
    return np.cumsum(count[:-1]) > 0


def predict_stimulus(
    encoder: TribeEncoder,
    features: Mapping[str, np.ndarray | None],
    events: pd.DataFrame,
    *,
    duration_trs: int = 100,
    overlap_trs: int = 0,
    batch_size: int = 8,
    precision: str = "fp32",
    device: str | torch.device = "cpu",
    feature_frequency_hz: float = 2.0,
    tr_s: float = 1.0,
    hemodynamic_offset_s: float = 5.0,
    duration_s: float | None = None,
    stimulus: str | None = None,
    compile: bool | str = False,
    allocate: Callable[[tuple[int, int]], Any] | None = None,
    allow_all_absent: bool = False,
) -> PredictionResult:
    """Predict the responses to one whole stimulus, segment by segment.

    Parameters
    ----------
    encoder
        From :func:`tribe_core.encoder.load_encoder`. Its float32 weights are
        never changed; the copy prepared for ``(precision, device, compile)`` is
        cached on it and reused by later calls.
    features
        ``{modality: [L, D, T] float32 at feature_frequency_hz, or None}``; a
        modality that is ``None`` or missing is zero-filled by the encoder.
    events
        The stimulus' events table (``start``, ``duration`` in seconds); decides
        which TRs are empty (see module docstring).
    duration_trs, overlap_trs
        Segment length and overlap in TRs (reference: 100 and 0).
        ``duration_trs`` must equal the encoder's ``n_output_timesteps``.
    batch_size
        Segments per forward.
    precision
        ``"fp32"`` (reference maths), ``"tf32"``, ``"bf16"`` or ``"fp16"``
        (see :mod:`tribe_core.encoder.inference`).
    device
        Where the encoder runs.
    feature_frequency_hz, tr_s
        Feature rate (2 Hz) and repetition time (1 s).
    hemodynamic_offset_s
        Recorded in the TR table (``response_time_s``); the reference's 5 s.
    duration_s
        Stimulus duration; default: the longest of the features and the events.
    stimulus
        Named in error messages.
    compile
        Use ``torch.compile`` (batches are padded to ``batch_size``); a string is
        the compile mode, ``"reduce-overhead"`` (CUDA graphs) being the fastest
        on a GPU.
    allocate
        Makes the ``[n_kept_trs, n_vertices]`` float32 output from its shape;
        default a numpy array. A Zarr array (:func:`open_predictions_store`)
        makes the rows go to disk batch by batch.
    allow_all_absent
        With every modality absent, return the encoder's output for all-zero-filled
        inputs (its baseline: what modality ablation removes the last modality
        to) instead of raising. That output depends only on the segment length,
        so it is the same map sequence in every segment.

    Returns
    -------
    PredictionResult
        ``predictions [n_kept_trs, n_vertices]`` and the TR table.

    Raises
    ------
    TribeInputError
        Wrong layer count or dims for the checkpoint, NaNs, an empty feature
        store, no modality at all (unless ``allow_all_absent``), or an unusable
        events table.
    """
    check_precision(precision)
    if duration_trs != encoder.n_output_timesteps:
        raise TribeConfigError(
            f"duration_trs={duration_trs} but the checkpoint predicts "
            f"{encoder.n_output_timesteps} TRs per segment; use duration_trs="
            f"{encoder.n_output_timesteps}"
        )
    steps_per_tr = tr_s * feature_frequency_hz
    if abs(steps_per_tr - round(steps_per_tr)) > 1e-9 or round(steps_per_tr) < 1:
        raise TribeConfigError(
            f"tr_s * feature_frequency_hz must be a whole number, got {steps_per_tr}"
        )
    steps_per_tr = int(round(steps_per_tr))
    if allocate is None:
        allocate = lambda shape: np.empty(shape, np.float32)  # noqa: E731
    present = _check_features(encoder, features, stimulus, allow_all_absent)
    ev_starts, ev_stops = _check_events(events, stimulus)
    n_steps = max((v.shape[2] for v in present.values()), default=0)
    if duration_s is None:
        duration_s = max(n_steps / feature_frequency_hz, float(ev_stops.max()))
    n_trs = max(1, math.ceil(duration_s / tr_s - 1e-9))

    seg_starts = segment_starts(n_trs, duration_trs, overlap_trs)
    seg_steps = duration_trs * steps_per_tr
    model = prepare_encoder(
        encoder, precision=precision, device=device, compile=compile, cached=True
    )
    n_vertices = encoder.n_outputs
    # The TR table depends only on the segments and the events: which rows each
    # batch of segments fills is known before any forward, so rows go straight to
    # their place in `rows` (an array, or a Zarr array being written). It has the
    # stimulus' n_trs rows: the last segment's padding past the end is no TR of it.
    segment = assign_trs(seg_starts, duration_trs)[:n_trs]
    tr_index = np.arange(n_trs, dtype=np.int64)
    kept = kept_trs(n_trs, tr_s, ev_starts, ev_stops)
    prediction_row = np.full(len(tr_index), -1, dtype=np.int64)
    prediction_row[kept] = np.arange(int(kept.sum()))
    rows = allocate((int(kept.sum()), n_vertices))
    # Bytes one segment costs on the device (inputs + output), so a memory budget
    # (TRIBEFLOW_MEMORY_BUDGET_MB) can shrink the batch before it runs; a real CUDA
    # out-of-memory error halves it (run_with_batch_fallback logs a warning).
    per_segment_bytes = 4 * (
        sum(int(v.shape[0]) * int(v.shape[1]) * seg_steps for v in present.values())
        + duration_trs * n_vertices
    )

    def run_batch(first: int, stop: int) -> None:
        chunk = seg_starts[first:stop]
        # Compiled graphs want one static batch shape: pad to the batch size in use.
        n_fill = max(len(chunk), stop - first) if compile else len(chunk)
        batch = {}
        for name, value in present.items():
            arr = np.zeros((n_fill, *value.shape[:2], seg_steps), dtype=np.float32)
            for i, start_tr in enumerate(chunk):
                lo = int(start_tr) * steps_per_tr
                piece = np.asarray(value[:, :, lo : lo + seg_steps], dtype=np.float32)
                if not np.isfinite(piece).all():
                    raise TribeInputError(
                        f"modality {name!r}: features contain "
                        f"{int((~np.isfinite(piece)).sum())} NaN/inf values "
                        f"(steps {lo}..{lo + piece.shape[2]})",
                        stimulus=stimulus,
                    )
                arr[i, :, :, : piece.shape[2]] = piece
            batch[name] = torch.from_numpy(arr).to(device, non_blocking=True)
        if present:
            out = model(batch)[: len(chunk)]  # [b, V, duration_trs]
        else:
            out = _all_absent_forward(model, encoder, n_fill, seg_steps, device)[: len(chunk)]
        if not bool(torch.isfinite(out).all()):
            raise TribeConfigError(
                f"stimulus {stimulus!r}: the encoder produced non-finite values in "
                f"precision {precision!r} (segments from TR {int(chunk[0])}); "
                "use precision 'tf32' or 'fp32'"
            )
        out = out.transpose(1, 2).float().cpu().numpy()  # [b, duration_trs, V]
        mine = np.flatnonzero(kept & (segment >= first) & (segment < stop))
        if len(mine):
            values = out[segment[mine] - first, mine - seg_starts[segment[mine]]]
            rows[prediction_row[mine[0]] : prediction_row[mine[-1]] + 1] = values

    with torch.inference_mode(), precision_context(precision):
        run_with_batch_fallback(
            run_batch,
            len(seg_starts),
            batch_size,
            bytes_per_item=per_segment_bytes,
            logger=log,
            what="segments",
        )

    tr_start = tr_index * tr_s
    trs = pd.DataFrame(
        {
            "tr_index": tr_index,
            "tr_start_s": tr_start,
            "response_time_s": tr_start + hemodynamic_offset_s,
            "segment": np.where(kept, segment, -1).astype(np.int64),
            "kept": kept,
            "prediction_row": prediction_row,
        }
    )
    trs.attrs["hemodynamic_offset_s"] = float(hemodynamic_offset_s)
    return PredictionResult(
        predictions=rows,
        trs=trs,
        hemodynamic_offset_s=float(hemodynamic_offset_s),
        tr_s=float(tr_s),
    )


def _all_absent_forward(
    model: torch.nn.Module,
    encoder: TribeEncoder,
    batch: int,
    n_steps: int,
    device: str | torch.device,
) -> torch.Tensor:
    """``model``'s output ``[batch, V, T]`` with every modality absent.

    The encoder zero-fills an absent modality *after* its projector, and needs at
    least one input to know the batch and time sizes; so one modality is fed zeros
    and its projector's output is replaced by zeros of the same shape and dtype,
    which is exactly the zero-filled branch of ``TribeEncoder.forward``.
    """
    name, (n_layers, dim) = next(iter(encoder.feature_dims.items()))
    module = getattr(model, "_orig_mod", model)  # a torch.compile wrapper keeps the module
    projector = cast(torch.nn.Module, cast(TribeEncoder, module).projectors[name])
    handle = projector.register_forward_hook(lambda _m, _args, out: torch.zeros_like(out))
    try:
        zeros = torch.zeros((batch, n_layers, dim, n_steps), dtype=torch.float32, device=device)
        return model({name: zeros})
    finally:
        handle.remove()


class PredictionsStoreWriter:
    """A ``predictions.zarr`` being built; see :func:`open_predictions_store`."""

    def __init__(self, group: Any, chunk_trs: int) -> None:
        self._group, self._chunk_trs = group, chunk_trs
        self.finished = False

    def allocate(self, shape: tuple[int, int]) -> Any:
        """The ``predictions [n_kept_trs, n_vertices]`` float32 Zarr array, chunked by TR."""
        chunks = (max(1, min(self._chunk_trs, shape[0])), max(1, shape[1]))
        return self._group.create_array(
            PREDICTIONS, shape=shape, dtype="float32", chunks=chunks, fill_value=0
        )

    def finish(self, result: PredictionResult, attrs: Mapping[str, Any]) -> None:
        """Write the TR table (one row per prediction row) and the attributes (after the rows)."""
        from tribe_core.io.zarr_store import jsonable

        for name, value in _tr_arrays(result).items():
            arr = self._group.create_array(
                name, shape=value.shape, dtype=value.dtype, chunks=(max(1, len(value)),)
            )
            if value.size:
                arr[...] = value
        full = {
            **attrs,
            "hemodynamic_offset_s": result.hemodynamic_offset_s,
            "tr_s": result.tr_s,
            "n_vertices": result.n_vertices,
            "n_trs": result.n_trs,
            "n_kept_trs": int(result.predictions.shape[0]),
        }
        self._group.attrs.update(jsonable(full))
        self.finished = True


def _tr_arrays(result: PredictionResult) -> dict[str, np.ndarray]:
    """The store's TR table: the :data:`TR_ARRAYS` of the kept TRs, in prediction-row order."""
    trs = result.trs
    kept = trs["kept"].to_numpy(dtype=bool)
    if int(kept.sum()) != result.predictions.shape[0]:
        raise ValueError(
            f"{int(kept.sum())} kept TRs but {result.predictions.shape[0]} prediction rows"
        )
    return {
        "tr_index": trs["tr_index"].to_numpy(dtype=np.int64)[kept],
        "tr_start_s": trs["tr_start_s"].to_numpy(dtype=np.float64)[kept],
        "tr_response_time_s": trs["response_time_s"].to_numpy(dtype=np.float64)[kept],
        "tr_segment": trs["segment"].to_numpy(dtype=np.int64)[kept],
    }


@contextlib.contextmanager
def open_predictions_store(
    path: str | Path, chunk_trs: int = 64
) -> Iterator[PredictionsStoreWriter]:
    """Build ``predictions.zarr`` while predicting; it appears under ``path`` only when finished.

    Pass ``writer.allocate`` to :func:`predict_stimulus` (rows go to disk batch
    by batch), then call ``writer.finish(result, attrs)``.
    """
    import zarr

    from tribe_core.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        writer = PredictionsStoreWriter(group, chunk_trs)
        yield writer
        if not writer.finished:
            raise RuntimeError(f"{path}: predictions store left without finish()")


def write_predictions(path: str | Path, result: PredictionResult, attrs: Mapping[str, Any]) -> Path:
    """Write ``predictions.zarr`` atomically.

    Arrays, all with one row per row of ``predictions`` (the kept TRs, in time
    order): ``predictions [n_kept_trs, n_vertices]`` float32, ``tr_index``
    int64 (the TR of the stimulus, ``0 .. n_trs - 1``), ``tr_start_s`` float64,
    ``tr_response_time_s`` float64, ``tr_segment`` int64. Attributes: ``attrs``
    plus ``hemodynamic_offset_s``, ``tr_s``, ``n_vertices``, ``n_trs`` (TRs of
    the stimulus, kept or not: ``ceil(duration_s / tr_s)``) and ``n_kept_trs``.
    The dropped TRs are those of ``range(n_trs)`` missing from ``tr_index``.
    """
    with open_predictions_store(path) as writer:
        rows = writer.allocate(tuple(result.predictions.shape))
        if result.predictions.size:
            rows[...] = np.asarray(result.predictions, dtype=np.float32)
        writer.finish(result, attrs)
    return Path(path)


def read_predictions(path: str | Path) -> PredictionResult:
    """Read a store written by :func:`write_predictions` back into a PredictionResult.

    ``trs`` gets its ``n_trs`` rows back (dropped TRs with ``kept`` False,
    ``segment`` and ``prediction_row`` -1). An older store, whose TR table ran
    over every TR of every segment, padding included (``tr_kept`` marking the
    rows), is read too, cropped to the stimulus' TRs.
    """
    from tribe_core.io.zarr_store import read_array, read_attrs

    attrs = read_attrs(path)
    predictions = read_array(path, PREDICTIONS).astype(np.float32, copy=False)
    offset = float(attrs.get("hemodynamic_offset_s", 5.0))
    tr_s = float(attrs.get("tr_s", 1.0))
    if "tr_index" in _array_names(path):
        rows = {name: read_array(path, name) for name in TR_ARRAYS}
        n_trs = int(attrs.get("n_trs", rows["tr_index"].max(initial=-1) + 1))
    else:
        rows, n_trs = _legacy_tr_rows(path, attrs, tr_s)
    index = rows["tr_index"].astype(np.int64)
    n_rows = predictions.shape[0]
    if any(len(v) != n_rows for v in rows.values()) or (
        n_rows and (index.min() < 0 or index.max() >= n_trs or (np.diff(index) <= 0).any())
    ):
        lengths = {k: len(v) for k, v in rows.items()}
        raise TribeInputError(
            f"TR table {lengths} does not line up with {n_rows} prediction rows, or names TRs "
            f"outside 0..{n_trs - 1} or out of order; rerun predict",
            path=path,
        )
    kept = np.zeros(n_trs, dtype=bool)
    kept[index] = True
    tr_start = np.arange(n_trs, dtype=np.float64) * tr_s
    tr_start[index] = rows["tr_start_s"]
    segment = np.full(n_trs, -1, dtype=np.int64)
    segment[index] = rows["tr_segment"]
    prediction_row = np.full(n_trs, -1, dtype=np.int64)
    prediction_row[index] = np.arange(n_rows)
    trs = pd.DataFrame(
        {
            "tr_index": np.arange(n_trs, dtype=np.int64),
            "tr_start_s": tr_start,
            "response_time_s": tr_start + offset,
            "segment": segment,
            "kept": kept,
            "prediction_row": prediction_row,
        }
    )
    trs.attrs["hemodynamic_offset_s"] = offset
    return PredictionResult(
        predictions=predictions, trs=trs, hemodynamic_offset_s=offset, tr_s=tr_s
    )


def _array_names(path: str | Path) -> set[str]:
    import zarr

    return set(zarr.open_group(str(path), mode="r").array_keys())


def _legacy_tr_rows(
    path: str | Path, attrs: Mapping[str, Any], tr_s: float
) -> tuple[dict[str, np.ndarray], int]:
    """The TR rows of an older store: ``tr_*`` over the padded segments, with ``tr_kept``."""
    from tribe_core.io.zarr_store import read_array

    kept = read_array(path, "tr_kept").astype(bool)
    index = np.flatnonzero(kept)
    rows = {
        "tr_index": index,
        "tr_start_s": read_array(path, "tr_start_s")[index],
        "tr_segment": read_array(path, "tr_segment")[index],
    }
    n_trs = int(index.max(initial=-1)) + 1  # at least up to the last kept TR
    if "duration_s" in attrs:
        n_trs = max(n_trs, math.ceil(float(attrs["duration_s"]) / tr_s - 1e-9))
    return rows, max(n_trs, 1)

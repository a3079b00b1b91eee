"""Plan a stimulus before running it: segments, feature steps, Zarr chunks, bytes, memory.

Nothing is extracted or predicted: the plan is arithmetic on the duration and
the checkpoint's ``feature_dims``, with the same rules the stages use
(:func:`tribe_core.features.n_feature_steps`, :func:`tribe_core.segments.segment_starts`,
the Zarr chunking of :mod:`tribe_core.io.zarr_store`). Use it to size a
10-hour stimulus' jobs (``mem_mb``, disk) before submitting them::

    python -m tribe_core.planning STIMULUS_FILE --checkpoint demo_models/tribe
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from tribe_core.features.timing import n_feature_steps
from tribe_core.segments import segment_starts

FLOAT32_BYTES = 4
ZARR_CHUNK_LEN = 256  # tribe_core.io.zarr_store.write_arrays default


def plan_stimulus(
    duration_s: float,
    *,
    feature_dims: Mapping[str, Sequence[int]],
    n_vertices: int = 20484,
    duration_trs: int = 100,
    overlap_trs: int = 0,
    tr_s: float = 1.0,
    feature_frequency_hz: float = 2.0,
    batch_size: int = 8,
    audio_sample_rate_hz: int = 16000,
    store_itemsize: int = FLOAT32_BYTES,
) -> dict[str, Any]:
    """Sizes of every intermediate of one stimulus of ``duration_s`` seconds.

    Parameters
    ----------
    duration_s
        Stimulus duration (``media.json``'s ``duration_s``).
    feature_dims
        ``{modality: (n_layer_groups, dim)}`` of the checkpoint
        (``model_build_args.feature_dims``).
    n_vertices, duration_trs, overlap_trs, tr_s
        Encoder outputs and segmentation (reference: 20484, 100, 0, 1 s).
    feature_frequency_hz
        Feature rate (2 Hz).
    batch_size
        Encoder segments per forward.
    audio_sample_rate_hz
        ``audio.wav`` rate (16 kHz PCM16 mono).
    store_itemsize
        Bytes per stored feature value (4: float32, 2: float16).

    Returns
    -------
    dict
        ``n_trs``, ``n_segments``, ``feature_steps``; ``features``:
        ``{modality: {"shape": [L, D, T], "bytes", "n_chunks"}}``;
        ``predictions``: ``{"shape": [n_trs, V], "bytes", "n_chunks"}`` (an
        upper bound: empty TRs are dropped); ``audio_wav_bytes``;
        ``encoder_batch_bytes`` (inputs and outputs of one forward);
        ``predict_peak_bytes`` (features, per-segment outputs and the kept
        rows held by ``predict_stimulus``); ``total_disk_bytes``.
    """
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s}")
    n_trs = max(1, math.ceil(duration_s / tr_s - 1e-9))
    steps_per_tr = int(round(tr_s * feature_frequency_hz))
    starts = segment_starts(n_trs, duration_trs, overlap_trs)
    n_segments = len(starts)
    steps = n_feature_steps(duration_s, feature_frequency_hz)
    features: dict[str, dict[str, Any]] = {}
    for modality, dims in feature_dims.items():
        n_layers, dim = (int(d) for d in dims)
        features[modality] = {
            "shape": [n_layers, dim, steps],
            "bytes": n_layers * dim * steps * store_itemsize,
            "n_chunks": math.ceil(steps / ZARR_CHUNK_LEN),
        }
    prediction_bytes = n_trs * n_vertices * FLOAT32_BYTES
    seg_steps = duration_trs * steps_per_tr
    per_segment_in = sum(
        int(l_) * int(d) * seg_steps * FLOAT32_BYTES for l_, d in feature_dims.values()
    )
    per_segment_out = duration_trs * n_vertices * FLOAT32_BYTES
    batch = min(batch_size, n_segments)
    features_in_memory = sum(
        int(l_) * int(d) * steps * FLOAT32_BYTES for l_, d in feature_dims.values()
    )
    audio_wav_bytes = 44 + int(round(duration_s * audio_sample_rate_hz)) * 2
    return {
        "duration_s": float(duration_s),
        "n_trs": n_trs,
        "n_segments": n_segments,
        "segment_trs": duration_trs,
        "feature_steps": steps,
        "features": features,
        "predictions": {
            "shape": [n_trs, n_vertices],
            "bytes": prediction_bytes,
            "n_chunks": math.ceil(n_trs / ZARR_CHUNK_LEN),
        },
        "audio_wav_bytes": audio_wav_bytes,
        "encoder_batch_bytes": batch * (per_segment_in + per_segment_out),
        "encoder_bytes_per_segment": per_segment_in + per_segment_out,
        "predict_peak_bytes": features_in_memory + n_segments * per_segment_out + prediction_bytes,
        "total_disk_bytes": audio_wav_bytes
        + sum(f["bytes"] for f in features.values())
        + prediction_bytes,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the plan of a stimulus file as JSON (probes its duration with ffprobe)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stimulus", help="video or audio file")
    parser.add_argument("--checkpoint", required=True, help="TRIBE v2 model dir or hub id")
    parser.add_argument("--duration-trs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    from tribe_core.media import probe_media
    from tribe_core.stages import checkpoint_meta

    info = probe_media(args.stimulus)
    _, build_args = checkpoint_meta(args.checkpoint)
    plan = plan_stimulus(
        info.duration_s,
        feature_dims=build_args["feature_dims"],
        n_vertices=int(build_args.get("n_outputs", 20484)),
        duration_trs=args.duration_trs,
        batch_size=args.batch_size,
    )
    print(json.dumps(plan, indent=2))


if __name__ == "__main__":
    main()

"""Time shards of a stimulus' video features (config ``features.video_shards`` > 1).

A shard is a run of whole 60 s chunks (:func:`tribe_core.features.timing.shard_chunks`),
encoded by its own job into its own store ``[L, D, n]`` whose attrs place it on the
stimulus grid (``first_step``); :func:`merge_video_shards` copies the shards into
one store ``[L, D, T]``. Chunks are encoded independently, so the merged store is
the very array one unsharded job writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tribe_core.errors import TribeInputError
from tribe_core.features.spec import FeatureSpec
from tribe_core.features.store import feature_store_attrs
from tribe_core.features.timing import (
    chunk_bounds,
    chunks_grid_extent,
    n_feature_steps,
    shard_chunks,
)
from tribe_core.features.video import iter_video_feature_blocks
from tribe_core.io.zarr_store import open_feature_array, open_feature_store
from tribe_core.measure import measure
from tribe_core.media.probe import MediaInfo

log = logging.getLogger(__name__)

# Attrs a shard has beyond an unsharded store's, and those that differ by content.
_SHARD_KEYS = ("shard", "n_shards", "chunks", "n_chunks", "first_step", "n_steps")
_STORE_KEYS = ("present", "shape", "dtype", "timing")


def check_shard(shard: int, n_shards: int) -> None:
    """Raise ``ValueError`` unless ``0 <= shard < n_shards``."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard must be in 0 .. {n_shards - 1}, got {shard}")


def write_video_shard(
    video: str | Path,
    info: MediaInfo,
    spec: FeatureSpec,
    store_out: str | Path,
    *,
    shard: int,
    n_shards: int,
    stimulus: str | None = None,
) -> None:
    """Encode the chunks ``shard_chunks(...)[shard]`` of a video into ``store_out``.

    The store holds only the shard's steps ``[L, D, n]`` (float32), placed at
    ``attrs["first_step"]`` of the stimulus grid by :func:`merge_video_shards`. A
    shard with no chunk (more shards than the stimulus has 60 s chunks) or a
    stimulus without a video stream writes an absent store.
    """
    check_shard(shard, n_shards)
    n_chunks = len(chunk_bounds(info.duration_s, spec.chunk_max_s, spec.chunk_min_s))
    parts = shard_chunks(n_chunks, n_shards)
    chunks = parts[shard] if shard < len(parts) and info.has_video else []
    extent = chunks_grid_extent(
        info.duration_s, spec.frequency_hz, chunks, spec.chunk_max_s, spec.chunk_min_s
    )
    first, stop = extent if extent is not None else (0, 0)
    attrs = {
        **feature_store_attrs(spec, info.duration_s),
        "shard": shard,
        "n_shards": n_shards,
        "chunks": list(chunks),
        "n_chunks": n_chunks,
        "first_step": first,
        "n_steps": n_feature_steps(info.duration_s, spec.frequency_hz),
    }
    with open_feature_store(store_out, max(stop - first, 1), attrs) as store:
        with measure() as timing:
            if extent is not None:
                blocks = iter_video_feature_blocks(Path(video), spec, info.duration_s, None, chunks)
                for start, block in blocks:
                    store.write(start - first, block)
        attrs["timing"] = timing
    log.info(
        "video shard %d/%d of %s: chunks %s, steps %d.. %s in %s",
        shard, n_shards, stimulus, chunks, first, store.shape, timing,
    )  # fmt: skip


def merge_video_shards(
    shard_stores: Sequence[str | Path],
    store_out: str | Path,
    *,
    store_dtype: str,
    stimulus: str | None = None,
    steps_per_copy: int = 256,
) -> None:
    """Place the time shards into one video store ``[L, D, T]``.

    The result has the attrs of an unsharded store and the very same array.
    ``attrs["timing"]`` sums the shards' wall time (``wall_s``) and keeps each
    shard's (``shards``). Shards are copied ``steps_per_copy`` steps at a time,
    so memory stays at one piece whatever the length.

    Raises
    ------
    TribeInputError
        A shard made with other settings than shard 0, a missing or repeated
        shard, or shards that do not cover every chunk.
    """
    loaded = sorted((open_feature_array(p) for p in shard_stores), key=lambda p: p[1]["shard"])
    if not loaded:
        raise ValueError("no shard store to merge")
    base = _settings(loaded[0][1])
    n_shards, n_chunks = loaded[0][1]["n_shards"], loaded[0][1]["n_chunks"]
    seen: list[int] = []
    for path, (_, attrs) in zip(shard_stores, loaded, strict=True):
        own = (_settings(attrs), attrs["n_shards"], attrs["n_chunks"])
        if own != (base, n_shards, n_chunks):
            raise TribeInputError(
                "video shard made with other settings than shard 0; rerun its job",
                path=path,
                stimulus=stimulus,
            )
        seen += attrs["chunks"]
    shards = [a["shard"] for _, a in loaded]
    if shards != list(range(n_shards)) or len(shard_stores) != n_shards:
        raise TribeInputError(
            f"expected shards 0..{n_shards - 1}, got {shards}", path=store_out, stimulus=stimulus
        )
    present = [(data, attrs) for data, attrs in loaded if data is not None]
    if present and sorted(seen) != list(range(n_chunks)):
        raise TribeInputError(
            f"video shards cover chunks {sorted(seen)} of {n_chunks}",
            path=store_out,
            stimulus=stimulus,
        )
    timing = _summed_timing([a["timing"] for _, a in loaded])
    base["timing"] = timing
    n_steps = loaded[0][1]["n_steps"]
    with open_feature_store(store_out, n_steps, base, dtype=store_dtype) as store:
        with measure() as merge_timing:
            for data, attrs in present:
                for a in range(0, data.shape[-1], steps_per_copy):
                    piece = np.asarray(data[..., a : a + steps_per_copy], dtype=np.float32)
                    store.write(attrs["first_step"] + a, piece)
        timing["merge"] = merge_timing
    log.info("merged %d video shards of %s: %s", n_shards, stimulus, store.shape)


def _settings(attrs: dict[str, Any]) -> dict[str, Any]:
    """A shard's attrs as an unsharded store would have them (how it was made)."""
    return {k: v for k, v in attrs.items() if k not in _SHARD_KEYS + _STORE_KEYS}


def _summed_timing(timings: list[dict[str, Any]]) -> dict[str, Any]:
    """Total wall time, the largest peaks, and each shard's own timing."""
    cuda = [t["cuda_peak_mb"] for t in timings if t.get("cuda_peak_mb") is not None]
    return {
        "wall_s": round(sum(t["wall_s"] for t in timings), 3),
        "peak_rss_mb": max(t["peak_rss_mb"] for t in timings),
        "cuda_peak_mb": max(cuda) if cuda else None,
        "shards": timings,
    }

"""Zarr v3 stores for features ``[L, D, T]`` and predictions, written atomically.

A store is a directory holding a Zarr group. Arrays are chunked along their
last (time) axis for features and their first (TR) axis for predictions. The
group's attributes describe how the data were made, so a store made with
other settings can be detected as stale (:func:`store_matches`).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import atomic_path

FEATURE_ARRAY = "features"
# Snakemake marks a directory output with a hidden timestamp file; Zarr warns about any
# file it does not know when it lists a group. That file is expected in our stores.
warnings.filterwarnings(
    "ignore", message=r"Object at \.snakemake_timestamp is not recognized", category=UserWarning
)


def jsonable(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` as JSON gives them back (tuples as lists, paths as strings)."""
    # Round-trip through JSON so tuples/paths compare equal to what is read back.
    return json.loads(json.dumps(dict(attrs), default=str))


def write_arrays(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
    chunk_axis: Mapping[str, int] | None = None,
    chunk_len: int = 256,
) -> Path:
    """Write several named arrays and group attributes to a Zarr store atomically.

    Parameters
    ----------
    path
        Final store directory (``*.zarr``).
    arrays
        Name -> array. Each array is chunked along ``chunk_axis[name]`` (default
        its last axis) in pieces of ``chunk_len``.
    attrs
        JSON-serialisable group attributes.
    """
    path = Path(path)
    chunk_axis = dict(chunk_axis or {})
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        for name, value in arrays.items():
            value = np.asarray(value)
            chunks = list(value.shape) or [1]
            if value.ndim:
                axis = chunk_axis.get(name, value.ndim - 1)
                chunks[axis] = max(1, min(chunk_len, value.shape[axis]))
                chunks = [max(1, c) for c in chunks]
            arr = group.create_array(
                name, shape=value.shape, dtype=value.dtype, chunks=tuple(chunks)
            )
            if value.size:
                arr[...] = value
        group.attrs.update(jsonable(attrs))
    return path


def read_attrs(path: str | Path) -> dict[str, Any]:
    """Return the group attributes of the store at ``path``."""
    path = Path(path)
    if not path.exists():
        raise TribeInputError("Zarr store does not exist", path=path)
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a damaged store
        raise TribeInputError(f"not a readable Zarr store ({exc})", path=path) from exc
    return dict(group.attrs)


def _group_array(group: zarr.Group, name: str, path: str | Path) -> zarr.Array:
    """Array ``name`` of ``group``; a missing name or a subgroup is a bad store."""
    if name not in group:
        raise TribeInputError(f"Zarr store has no array {name!r}", path=path)
    member = group[name]
    if not isinstance(member, zarr.Array):
        raise TribeInputError(f"Zarr store's {name!r} is a group, not an array", path=path)
    return member


def read_array(path: str | Path, name: str) -> np.ndarray:
    """Read array ``name`` of the store at ``path`` into memory."""
    path = Path(path)
    group = zarr.open_group(str(path), mode="r")
    return np.asarray(_group_array(group, name, path)[...])


def write_feature_store(
    path: str | Path, features: np.ndarray | None, attrs: Mapping[str, Any]
) -> Path:
    """Write one modality's features ``[L, D, T]`` (or an absent-modality marker).

    ``features=None`` records that the stimulus has no such modality (e.g. a
    silent video has no audio): the store holds an empty ``[0, 0, 0]`` array
    and ``attrs["present"] = False``; the encoder then zero-fills the modality.
    """
    if features is None:
        data = np.zeros((0, 0, 0), dtype=np.float32)
        present = False
    else:
        data = np.asarray(features)
        if data.ndim != 3:
            raise ValueError(f"features must be [L, D, T], got shape {data.shape}")
        present = True
    full = {**attrs, "present": present, "shape": list(data.shape), "dtype": str(data.dtype)}
    return write_arrays(path, {FEATURE_ARRAY: data}, full)


class FeatureStoreWriter:
    """Features ``[L, D, T]`` written block by block into a store being built.

    Made by :func:`open_feature_store`. Steps never written stay zero (the
    array's fill value), so memory is one block, never the whole stimulus.
    """

    def __init__(self, group: zarr.Group, n_steps: int, dtype: str, chunk_len: int) -> None:
        self._group, self._n_steps, self._dtype, self._chunk_len = group, n_steps, dtype, chunk_len
        self._array: zarr.Array | None = None
        self.first_step: int | None = None
        self.stop_step: int | None = None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the array, ``None`` while no block was written."""
        return None if self._array is None else tuple(self._array.shape)

    def write(self, first: int, block: np.ndarray) -> None:
        """Write ``block [L, D, n]`` at steps ``first .. first + n`` (clipped to the grid)."""
        block = np.asarray(block)
        if block.ndim != 3:
            raise ValueError(f"feature blocks must be [L, D, n], got shape {block.shape}")
        if self._array is None:
            chunks = (*block.shape[:2], max(1, min(self._chunk_len, self._n_steps)))
            self._array = self._group.create_array(
                FEATURE_ARRAY,
                shape=(*block.shape[:2], self._n_steps),
                dtype=self._dtype,
                chunks=tuple(max(1, c) for c in chunks),
                fill_value=0,
            )
        elif block.shape[:2] != self._array.shape[:2]:
            raise ValueError(
                f"feature block {block.shape[:2]} does not match the store's "
                f"{self._array.shape[:2]}"
            )
        stop = min(first + block.shape[-1], self._n_steps)
        if first < 0 or stop <= first:
            return
        self._array[..., first:stop] = block[..., : stop - first].astype(self._dtype, copy=False)
        self.first_step = first if self.first_step is None else min(self.first_step, first)
        self.stop_step = stop if self.stop_step is None else max(self.stop_step, stop)


@contextlib.contextmanager
def open_feature_store(
    path: str | Path,
    n_steps: int,
    attrs: Mapping[str, Any],
    dtype: str = "float32",
    chunk_len: int = 256,
) -> Iterator[FeatureStoreWriter]:
    """Build a feature store block by block; it appears under ``path`` only on success.

    The attributes are ``attrs`` plus what :func:`write_feature_store` records
    (``present``, ``shape``, ``dtype``); a writer that got no block leaves an
    absent-modality store. ``attrs`` may be changed inside the ``with`` block
    (e.g. to add the stage's timing): they are written on exit.
    """
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        writer = FeatureStoreWriter(group, n_steps, dtype, chunk_len)
        yield writer
        if writer.shape is None:
            group.create_array(FEATURE_ARRAY, shape=(0, 0, 0), dtype="float32", chunks=(1, 1, 1))
        full = {
            **attrs,
            "present": writer.shape is not None,
            "shape": list(writer.shape or (0, 0, 0)),
            "dtype": dtype if writer.shape is not None else "float32",
        }
        group.attrs.update(jsonable(full))


def open_feature_array(path: str | Path) -> tuple[zarr.Array | None, dict[str, Any]]:
    """The features of a store as a lazy Zarr array (``None`` if absent) and its attrs.

    Slicing the array reads only the chunks it touches.
    """
    attrs = read_attrs(path)
    if not attrs.get("present", False):
        return None, attrs
    group = zarr.open_group(str(path), mode="r")
    return _group_array(group, FEATURE_ARRAY, path), attrs


def read_feature_store(path: str | Path) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Return ``(features [L, D, T] or None if absent, attrs)``."""
    attrs = read_attrs(path)
    if not attrs.get("present", False):
        return None, attrs
    return read_array(path, FEATURE_ARRAY).astype(np.float32, copy=False), attrs


def store_matches(path: str | Path, expected: Mapping[str, Any]) -> bool:
    """True if ``path`` is a complete store whose attrs contain ``expected``."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        attrs = read_attrs(path)
    except TribeInputError:
        return False
    want = jsonable(expected)
    return all(attrs.get(k) == v for k, v in want.items())

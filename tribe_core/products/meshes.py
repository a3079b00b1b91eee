"""fsaverage meshes shipped with nilearn, and the input check every product shares."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from tribe_core.errors import TribeInputError
from tribe_core.products import N_VERTICES

#: Vertices per hemisphere of the icosahedral fsaverage meshes (nested: the first
#: ``n`` vertices of a finer mesh are the vertices of the coarser one).
FSAVERAGE_SIZES = {
    "fsaverage3": 642,
    "fsaverage4": 2562,
    "fsaverage5": 10242,
    "fsaverage6": 40962,
    "fsaverage7": 163842,
    "fsaverage": 163842,
}


@dataclass(frozen=True)
class HemiMesh:
    """One hemisphere of a mesh: ``coordinates [n, 3]`` (mm), ``faces [m, 3]`` (int)."""

    coordinates: np.ndarray
    faces: np.ndarray


def as_predictions(predictions: np.ndarray, *, what: str = "predictions") -> np.ndarray:
    """Check and return predictions as float32 ``[n_trs, 20484]``.

    A single map ``[20484]`` is accepted and returned as ``[1, 20484]``.
    """
    arr = np.asarray(predictions)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != N_VERTICES:
        raise TribeInputError(
            f"{what} must have shape [n_trs, {N_VERTICES}] (fsaverage5, left hemisphere "
            f"first), got {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise TribeInputError(f"{what} hold no TR (shape {arr.shape})")
    return arr.astype(np.float32, copy=False)


#: File stems of the fsaverage5 data nilearn ships (``nilearn/datasets/data/fsaverage5``).
_NILEARN_FILES = {
    "pial": "pial",
    "white_matter": "white",
    "inflated": "infl",
    "sphere": "sphere",
    "flat": "flat",
    "sulcal": "sulc",
}


def _nilearn_fsaverage5_file(stem: str, hemi: str) -> Path | None:
    """Path of a shipped fsaverage5 GIFTI, found without importing nilearn (1-2 s)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "fsaverage5" / f"{stem}_{hemi}.gii.gz"
    return path if path.exists() else None


def _read_shipped(kind: str) -> tuple[list[np.ndarray], ...] | None:
    import nibabel as nib

    found = [_nilearn_fsaverage5_file(_NILEARN_FILES[kind], h) for h in ("left", "right")]
    paths = [p for p in found if p is not None]
    if len(paths) < len(found):
        return None
    images = [cast(nib.gifti.GiftiImage, nib.load(str(p))) for p in paths]
    return tuple([d.data for d in img.darrays] for img in images)


@functools.lru_cache(maxsize=8)
def load_fsaverage5(surface: str = "inflated") -> tuple[HemiMesh, HemiMesh]:
    """Left and right fsaverage5 meshes shipped with nilearn (no download).

    Parameters
    ----------
    surface
        ``pial``, ``white_matter``, ``inflated``, ``sphere`` or ``flat``.
    """
    if surface not in _NILEARN_FILES or surface == "sulcal":
        raise TribeInputError(
            f"unknown fsaverage5 surface {surface!r}; expected one of "
            "pial, white_matter, inflated, sphere, flat"
        )
    shipped = _read_shipped(surface)
    if shipped is None:  # another nilearn layout: use its API
        from nilearn import datasets

        parts = datasets.load_fsaverage("fsaverage5")[surface].parts
        shipped = tuple([parts[h].coordinates, parts[h].faces] for h in ("left", "right"))
    meshes = []
    for c, f in shipped:
        coords, faces = np.array(c, dtype=np.float64), np.array(f, dtype=np.int64)
        coords.setflags(write=False)  # cached and shared: nobody may edit it in place
        faces.setflags(write=False)
        meshes.append(HemiMesh(coords, faces))
    return tuple(meshes)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def load_fsaverage5_sulcal() -> tuple[np.ndarray, np.ndarray]:
    """Sulcal depth ``[10242]`` per hemisphere (background of brain maps)."""
    shipped = _read_shipped("sulcal")
    if shipped is None:
        from nilearn import datasets

        img = datasets.load_fsaverage_data("fsaverage5", data_type="sulcal")
        shipped = tuple([img.data.parts[h]] for h in ("left", "right"))
    sulc = tuple(np.array(d[0], dtype=np.float32).ravel() for d in shipped)
    for arr in sulc:
        arr.setflags(write=False)
    return sulc  # type: ignore[return-value]

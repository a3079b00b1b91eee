"""HCP-MMP1 parcellation (Glasser et al. 2016) on fsaverage5.

The atlas comes from a directory of FreeSurfer ``{lh,rh}.HCP-MMP1.annot`` files
on any icosahedral fsaverage mesh (fsaverage, fsaverage6, fsaverage5); because
the meshes are nested, the fsaverage5 labels are the first 10,242 vertices of
each hemisphere. Where the files come from (a configured folder, a cache, a
download the user allowed) is :mod:`tribe_core.products.atlas_source`'s job.
The project never ships the atlas itself.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.products import N_VERTICES, N_VERTICES_PER_HEMI
from tribe_core.products.atlas_source import (
    AtlasSettings,
    atlas_missing_message,
    resolve_atlas_dir,
)
from tribe_core.products.meshes import FSAVERAGE_SIZES

_HEMI_PREFIX = {"lh": "L", "rh": "R"}
_UNLABELLED = {"???", "unknown", "Unknown", "medial_wall", "Medial_Wall"}


@dataclass(frozen=True)
class Parcellation:
    """A two-hemisphere surface parcellation on fsaverage5.

    Attributes
    ----------
    areas
        Area names without hemisphere prefix or ``_ROI`` suffix (``V1``, ``STSdp``),
        in atlas order.
    vertex_area
        ``[20484]`` int32: index into ``areas`` per vertex (left hemisphere first),
        ``-1`` for unlabelled vertices (medial wall).
    source
        Where the labels were read from.
    """

    areas: tuple[str, ...]
    vertex_area: np.ndarray
    source: str

    def vertices(self, area: str, hemi: str = "both") -> np.ndarray:
        """Vertex indices (0..20483) of ``area`` in ``hemi`` (``left``, ``right``, ``both``)."""
        idx = np.flatnonzero(self.vertex_area == self.areas.index(area))
        if hemi == "left":
            return idx[idx < N_VERTICES_PER_HEMI]
        if hemi == "right":
            return idx[idx >= N_VERTICES_PER_HEMI]
        return idx


def _area_name(raw: bytes | str) -> str:
    name = raw.decode() if isinstance(raw, bytes) else str(raw)
    name = re.sub(r"^[LR]_", "", name)
    return re.sub(r"_ROI$", "", name)


def _find_annot(atlas_dir: Path, hemi: str) -> Path:
    candidates = []
    for sub in (atlas_dir, atlas_dir / "label", atlas_dir / "fsaverage" / "label"):
        if not sub.is_dir():
            continue
        # figshare/most copies: HCP-MMP1; MNE's download: HCPMMP1 (never the "combined" one).
        candidates += [sub / f"{hemi}.{n}.annot" for n in ("HCP-MMP1", "HCPMMP1")]
        candidates += [
            p for p in sorted(sub.glob(f"{hemi}.HCP*MMP1*.annot")) if "combined" not in p.name
        ]
    candidates = [p for p in candidates if p.is_file()]
    if not candidates:
        raise TribeConfigError(
            f"no {hemi}.HCP-MMP1.annot in atlas directory {str(atlas_dir)!r} (looked in it, "
            "label/ and fsaverage/label/); point the config at a folder holding "
            "lh.HCP-MMP1.annot and rh.HCP-MMP1.annot, or fetch them with MNE "
            "(mne.datasets.fetch_hcp_mmp_parcellation)"
        )
    return candidates[0]


def _read_hemi(path: Path, hemi: str) -> tuple[np.ndarray, list[str]]:
    """Labels ``[10242]`` (names per vertex, '' if unlabelled) of one hemisphere."""
    import nibabel as nib

    try:
        labels, _ctab, names = nib.freesurfer.read_annot(str(path))
    except Exception as exc:  # nibabel raises bare ValueError/struct errors
        raise TribeInputError(f"not a readable FreeSurfer .annot: {exc}", path=path) from exc
    n = labels.shape[0]
    if n not in FSAVERAGE_SIZES.values() or n < N_VERTICES_PER_HEMI:
        raise TribeInputError(
            f"annotation has {n} vertices; expected an icosahedral fsaverage mesh with at "
            f"least {N_VERTICES_PER_HEMI} vertices (fsaverage5/6/7)",
            path=path,
        )
    raw = [nm.decode() if isinstance(nm, bytes) else str(nm) for nm in names]
    labels = labels[:N_VERTICES_PER_HEMI]
    prefix = _HEMI_PREFIX[hemi] + "_"
    per_vertex = np.full(N_VERTICES_PER_HEMI, "", dtype=object)
    for lab in np.unique(labels):
        if lab < 0 or lab >= len(raw) or raw[lab] in _UNLABELLED:
            continue
        if re.match(r"^[LR]_", raw[lab]) and not raw[lab].startswith(prefix):
            raise TribeInputError(
                f"{hemi} annotation labels vertices with {raw[lab]!r} (other hemisphere); "
                "are lh/rh swapped?",
                path=path,
            )
        per_vertex[labels == lab] = _area_name(raw[lab])
    order = [_area_name(nm) for nm in raw if nm not in _UNLABELLED and nm.startswith(prefix)]
    return per_vertex, order


@functools.lru_cache(maxsize=4)
def _load_cached(atlas_dir: str) -> Parcellation:
    root = Path(atlas_dir)
    lh_path, rh_path = _find_annot(root, "lh"), _find_annot(root, "rh")
    lh, lh_order = _read_hemi(lh_path, "lh")
    rh, rh_order = _read_hemi(rh_path, "rh")
    per_vertex = np.concatenate([lh, rh])
    used = set(per_vertex[per_vertex != ""])
    areas = tuple(dict.fromkeys(a for a in lh_order + rh_order if a in used))
    index = {a: i for i, a in enumerate(areas)}
    vertex_area = np.array([index.get(a, -1) for a in per_vertex], dtype=np.int32)
    vertex_area.setflags(write=False)
    assert vertex_area.shape == (N_VERTICES,)
    return Parcellation(areas=areas, vertex_area=vertex_area, source=str(lh_path.parent))


def load_hcp_mmp1(atlas_dir: Path | str | None) -> Parcellation:
    """Load HCP-MMP1 labels on fsaverage5 (180 areas per hemisphere).

    Parameters
    ----------
    atlas_dir
        Folder holding ``lh.HCP-MMP1.annot`` and ``rh.HCP-MMP1.annot`` (directly, or in
        ``label/`` or ``fsaverage/label/`` as MNE lays them out). ``None``: the local caches
        of :func:`tribe_core.products.atlas_source.resolve_atlas_dir` (no download).

    Returns
    -------
    Parcellation
        ``vertex_area [20484]`` and area names; cached per folder.

    Raises
    ------
    TribeConfigError
        The folder does not exist or holds no annotation pair, or (``None``) no cache
        holds the atlas; the message says the ways to get it.
    """
    if atlas_dir is None:
        settings = AtlasSettings()
        found = resolve_atlas_dir(settings)
        if found is None:
            raise TribeConfigError(atlas_missing_message(settings))
        atlas_dir = found
    atlas_dir = Path(atlas_dir)
    if not atlas_dir.is_dir():
        raise TribeConfigError(
            f"atlas directory {str(atlas_dir)!r} does not exist; point the config at a folder "
            "holding lh.HCP-MMP1.annot and rh.HCP-MMP1.annot"
        )
    return _load_cached(str(atlas_dir.resolve()))

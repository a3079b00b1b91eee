"""Predictions as GIFTI surfaces and as a NIfTI time series in MNI152 2 mm space.

The NIfTI fills the cortical ribbon: every voxel of nilearn's MNI152 2 mm grid that
the ribbon between fsaverage5's white and pial surfaces passes through takes the
value of its nearest vertex (nearest among points on each vertex's white-to-pial
segment). fsaverage coordinates are MNI305; they are used as MNI152 coordinates,
as is common (the two spaces differ by a few millimetres). The voxel-to-vertex
map is computed once per process (about a second) and cached.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import atomic_path
from tribe_core.products import N_VERTICES_PER_HEMI
from tribe_core.products.meshes import as_predictions, load_fsaverage5

#: Fractions of cortical depth (0 = white, 1 = pial) used to sample the ribbon.
_DEPTHS = np.linspace(0.0, 1.0, 7)
#: Subdivisions per triangle edge when sampling the ribbon (spacing < 1.5 mm).
_FACE_SUBDIV = 6
_NIFTI_HEADER_BYTES = 352


def write_gifti(
    predictions: np.ndarray, out_dir: Path, *, tr_s: float = 1.0, name: str = "predictions"
) -> list[Path]:
    """Write one ``.func.gii`` time series per hemisphere.

    Parameters
    ----------
    predictions
        ``[n_trs, 20484]`` (left hemisphere first).
    out_dir
        Folder; files ``<name>.lh.func.gii`` and ``<name>.rh.func.gii``.
    tr_s
        Repetition time, stored as ``TimeStep`` (ms) metadata.

    Returns
    -------
    list of Path
        ``[lh, rh]``; each holds one float32 data array ``[10242]`` per TR (intent
        ``NIFTI_INTENT_TIME_SERIES``), readable with ``nilearn.surface.load_surf_data``.
    """
    import nibabel as nib

    preds = as_predictions(predictions)
    out_dir = Path(out_dir)
    paths = []
    for hemi, structure, part in (
        ("lh", "CortexLeft", preds[:, :N_VERTICES_PER_HEMI]),
        ("rh", "CortexRight", preds[:, N_VERTICES_PER_HEMI:]),
    ):
        meta = nib.gifti.GiftiMetaData(
            {"AnatomicalStructurePrimary": structure, "TimeStep": f"{tr_s * 1000:g}"}
        )
        arrays = [
            nib.gifti.GiftiDataArray(
                np.ascontiguousarray(row),
                intent="NIFTI_INTENT_TIME_SERIES",
                datatype="NIFTI_TYPE_FLOAT32",
            )
            for row in part
        ]
        img = nib.gifti.GiftiImage(meta=meta, darrays=arrays)
        path = out_dir / f"{name}.{hemi}.func.gii"
        with atomic_path(path) as tmp:
            tmp.write_bytes(img.to_bytes())
        paths.append(path)
    return paths


def mni152_grid() -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape ``(99, 117, 95)`` and affine ``[4, 4]`` of nilearn's MNI152 2 mm template.

    The same grid as ``nilearn.datasets.load_mni152_template(resolution=2)`` (a test
    checks it), without loading the template (importing nilearn.datasets takes seconds).
    """
    affine = np.array([[2.0, 0, 0, -98.0], [0, 2.0, 0, -134.0], [0, 0, 2.0, -72.0], [0, 0, 0, 1.0]])
    return (99, 117, 95), affine


def _barycentric_weights(n: int) -> np.ndarray:
    """``[k, 3]`` barycentric weights of a regular subdivision of a triangle."""
    ij = [(i, j) for i in range(n + 1) for j in range(n + 1 - i)]
    return np.array([(i / n, j / n, 1 - (i + j) / n) for i, j in ij])


@functools.lru_cache(maxsize=1)
def ribbon_map() -> tuple[np.ndarray, np.ndarray]:
    """Ribbon voxels of the MNI152 2 mm grid and their nearest fsaverage5 vertex.

    Returns
    -------
    voxels
        ``[n_voxels, 3]`` int voxel indices (i, j, k) inside the ribbon.
    vertex
        ``[n_voxels]`` index (0..20483) of the nearest vertex of each voxel.
    """
    from scipy.spatial import cKDTree

    shape, affine = mni152_grid()
    inv = np.linalg.inv(affine)
    white, pial = load_fsaverage5("white_matter"), load_fsaverage5("pial")
    weights = _barycentric_weights(_FACE_SUBDIV).astype(np.float32)
    occupied = np.zeros(shape, dtype=bool)
    columns = []
    for w, p in zip(white, pial, strict=True):
        for depth in _DEPTHS:
            surf = (1.0 - depth) * w.coordinates + depth * p.coordinates
            columns.append(surf)
            vox = (surf @ inv[:3, :3].T + inv[:3, 3]).astype(np.float32)
            # Sample each triangle in voxel coordinates; round to the voxel holding it.
            ijk = np.rint(np.einsum("kc,fcx->fkx", weights, vox[w.faces]).reshape(-1, 3))
            ijk = ijk.astype(np.int32)
            inside = np.all((ijk >= 0) & (ijk < np.array(shape, dtype=np.int32)), axis=1)
            occupied[tuple(ijk[inside].T)] = True
    voxels = np.argwhere(occupied)
    # Column points, ordered [hemi][depth][vertex]: map a point back to its vertex.
    points = np.concatenate(columns)
    n_depth = len(_DEPTHS)
    hemi_of = np.arange(len(points)) // (n_depth * N_VERTICES_PER_HEMI)
    vertex_of = np.arange(len(points)) % N_VERTICES_PER_HEMI + hemi_of * N_VERTICES_PER_HEMI
    centers = voxels @ affine[:3, :3].T + affine[:3, 3]
    _, nearest = cKDTree(points).query(centers)
    vertex = vertex_of[nearest].astype(np.int64)
    voxels.setflags(write=False)
    vertex.setflags(write=False)
    return voxels, vertex


def _smoothing_kernel_sigma(fwhm_mm: float, affine: np.ndarray) -> np.ndarray:
    voxel_mm = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return fwhm_mm / np.sqrt(8.0 * np.log(2.0)) / voxel_mm


def surface_to_volume(
    predictions: np.ndarray, *, smoothing_fwhm_mm: float | None = None
) -> np.ndarray:
    """Project predictions into the MNI152 2 mm ribbon (in memory).

    Returns
    -------
    numpy.ndarray
        ``[99, 117, 95, n_trs]`` float32, zero outside the ribbon. Use
        :func:`write_nifti` for long series (it streams one volume at a time).
    """
    preds = as_predictions(predictions)
    shape, _ = mni152_grid()
    out = np.zeros((*shape, preds.shape[0]), dtype=np.float32)
    for t, vol in enumerate(_volumes(preds, smoothing_fwhm_mm)):
        out[..., t] = vol
    return out


def _volumes(preds: np.ndarray, smoothing_fwhm_mm: float | None):
    """Yield one ``[99, 117, 95]`` float32 volume per TR."""
    from scipy.ndimage import gaussian_filter

    shape, affine = mni152_grid()
    voxels, vertex = ribbon_map()
    index = tuple(voxels.T)
    sigma = None
    if smoothing_fwhm_mm:
        if smoothing_fwhm_mm < 0:
            raise TribeInputError(f"smoothing FWHM must be >= 0 mm, got {smoothing_fwhm_mm}")
        sigma = _smoothing_kernel_sigma(float(smoothing_fwhm_mm), affine)
        mask = np.zeros(shape, dtype=np.float32)
        mask[index] = 1.0
        # Normalised convolution inside the ribbon: values neither leak into white
        # matter nor get diluted by the zeros around the ribbon.
        weight = gaussian_filter(mask, sigma, mode="constant")[index]
    for row in preds:
        vol = np.zeros(shape, dtype=np.float32)
        vol[index] = row[vertex]
        if sigma is not None:
            smooth = gaussian_filter(vol, sigma, mode="constant")
            vol = np.zeros(shape, dtype=np.float32)
            vol[index] = smooth[index] / weight
        yield vol


def write_nifti(
    predictions: np.ndarray,
    out_path: Path,
    *,
    smoothing_fwhm_mm: float | None = None,
    tr_s: float = 1.0,
) -> Path:
    """Write predictions as a 4D NIfTI in MNI152 2 mm space (cortical ribbon filled).

    Parameters
    ----------
    predictions
        ``[n_trs, 20484]`` (left hemisphere first).
    out_path
        ``.nii`` or ``.nii.gz`` file.
    smoothing_fwhm_mm
        Optional Gaussian smoothing (FWHM, mm) within the ribbon.
    tr_s
        Repetition time (4th voxel size, seconds).

    Returns
    -------
    Path
        ``out_path``; image ``[99, 117, 95, n_trs]`` float32, affine of nilearn's
        MNI152 2 mm template, zero outside the ribbon. Volumes are streamed, so memory
        stays at a few volumes whatever the length.
    """
    import nibabel as nib

    preds = as_predictions(predictions)
    out_path = Path(out_path)
    if not out_path.name.endswith((".nii", ".nii.gz")):
        raise TribeInputError("NIfTI output must end with .nii or .nii.gz", path=out_path)
    shape, affine = mni152_grid()
    header = nib.Nifti1Header()
    header.set_data_shape((*shape, preds.shape[0]))
    header.set_data_dtype(np.float32)
    header.set_qform(affine, code=4)
    header.set_sform(affine, code=4)
    header.set_zooms((*np.sqrt((affine[:3, :3] ** 2).sum(axis=0)), float(tr_s)))
    header.set_xyzt_units("mm", "sec")
    header["vox_offset"] = _NIFTI_HEADER_BYTES
    header["descrip"] = b"tribeflow TRIBE v2 predictions, fsaverage5 ribbon"
    with atomic_path(out_path) as tmp:
        opener = gzip.open if out_path.name.endswith(".gz") else open
        kwargs = {"compresslevel": 1} if opener is gzip.open else {}
        with opener(tmp, "wb", **kwargs) as fh:
            header.write_to(fh)
            fh.write(b"\0" * (_NIFTI_HEADER_BYTES - fh.tell()))
            for vol in _volumes(preds, smoothing_fwhm_mm):
                fh.write(vol.tobytes(order="F"))
    return out_path

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
import io
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
#: TRs per compressed block of the NIfTI writer (about 35 MB of float32 before gzip).
_VOLUMES_PER_BLOCK = 8


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


class _VolumeMaker:
    """Surface rows -> ``[99, 117, 95]`` float32 ribbon volumes (optionally smoothed)."""

    def __init__(self, smoothing_fwhm_mm: float | None) -> None:
        from scipy.ndimage import gaussian_filter

        self.shape, affine = mni152_grid()
        voxels, self.vertex = ribbon_map()
        self.index = tuple(voxels.T)
        # Ribbon voxels as offsets in a Fortran-ordered volume (the NIfTI data order).
        self.flat_f = np.ravel_multi_index(self.index, self.shape, order="F")
        self.sigma = None
        if smoothing_fwhm_mm:
            if smoothing_fwhm_mm < 0:
                raise TribeInputError(f"smoothing FWHM must be >= 0 mm, got {smoothing_fwhm_mm}")
            self.sigma = _smoothing_kernel_sigma(float(smoothing_fwhm_mm), affine)
            mask = np.zeros(self.shape, dtype=np.float32)
            mask[self.index] = 1.0
            # Normalised convolution inside the ribbon: values neither leak into white
            # matter nor get diluted by the zeros around the ribbon.
            self.weight = gaussian_filter(mask, self.sigma, mode="constant")[self.index]

    def volume(self, row: np.ndarray) -> np.ndarray:
        """One TR's volume."""
        from scipy.ndimage import gaussian_filter

        vol = np.zeros(self.shape, dtype=np.float32)
        vol[self.index] = row[self.vertex]
        if self.sigma is not None:
            smooth = gaussian_filter(vol, self.sigma, mode="constant")
            vol = np.zeros(self.shape, dtype=np.float32)
            vol[self.index] = smooth[self.index] / self.weight
        return vol

    def nifti_bytes(self, rows: np.ndarray) -> bytes:
        """The volumes of ``rows`` as NIfTI data (each volume in Fortran order)."""
        if self.sigma is not None:
            return b"".join(self.volume(row).tobytes(order="F") for row in rows)
        # Unsmoothed: scatter straight into Fortran-ordered flat volumes (no transposes).
        out = np.zeros((len(rows), int(np.prod(self.shape))), dtype=np.float32)
        out[:, self.flat_f] = np.asarray(rows, dtype=np.float32)[:, self.vertex]
        return out.tobytes()


def _volumes(preds: np.ndarray, smoothing_fwhm_mm: float | None) -> Iterator[np.ndarray]:
    """Yield one ``[99, 117, 95]`` float32 volume per TR."""
    maker = _VolumeMaker(smoothing_fwhm_mm)
    for row in preds:
        yield maker.volume(row)


def _gzip_member(data: bytes) -> bytes:
    """``data`` as one complete gzip member (level 1); members concatenate into a .gz."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def _ordered_parallel(fn: Callable[[int], bytes], n_items: int, threads: int) -> Iterator[bytes]:
    """``fn(0), fn(1), ...`` computed by ``threads`` threads, yielded in order, at most
    ``2 * threads`` results held at once."""
    threads = max(1, threads)
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[bytes]] = deque()
        for i in range(n_items):
            pending.append(pool.submit(fn, i))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_nifti(
    predictions: np.ndarray,
    out_path: Path,
    *,
    smoothing_fwhm_mm: float | None = None,
    tr_s: float = 1.0,
    threads: int = 1,
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
    threads
        Threads that build and compress the volumes (blocks of
        ``_VOLUMES_PER_BLOCK`` TRs, each written as one gzip member: a
        multi-member .gz that every gzip reader reads as one stream).

    Returns
    -------
    Path
        ``out_path``; image ``[99, 117, 95, n_trs]`` float32, affine of nilearn's
        MNI152 2 mm template, zero outside the ribbon. Volumes are streamed, so memory
        stays at ``2 * threads`` blocks whatever the length.
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
    head = io.BytesIO()
    header.write_to(head)
    head.write(b"\0" * (_NIFTI_HEADER_BYTES - head.tell()))
    maker = _VolumeMaker(smoothing_fwhm_mm)
    n_blocks = -(-preds.shape[0] // _VOLUMES_PER_BLOCK)
    gz = out_path.name.endswith(".gz")

    def block(i: int) -> bytes:
        rows = preds[i * _VOLUMES_PER_BLOCK : (i + 1) * _VOLUMES_PER_BLOCK]
        data = (head.getvalue() if i == 0 else b"") + maker.nifti_bytes(np.asarray(rows))
        return _gzip_member(data) if gz else data

    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        for data in _ordered_parallel(block, n_blocks, threads):
            fh.write(data)
    return out_path

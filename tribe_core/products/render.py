"""Fast raster rendering of fsaverage5 maps (orthographic, z-buffered, smooth-shaded).

nilearn's matplotlib engine draws 20k 3D polygons per panel (about 0.3 s each, more on a
busy 2-core machine). Here each (hemisphere, view) is rasterised once per process:
every pixel learns which triangle it sees and its barycentric weights, so drawing a map
is a weighted sum of three vertex values per pixel plus a colour lookup (milliseconds),
which makes mosaics take a second and movies possible on a CPU. The meshes (inflated
fsaverage5) and sulcal depth background are nilearn's; the camera angles are nilearn's
(``elev``/``azim`` of ``plot_surf``), with anterior up in dorsal and ventral views.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from tribe_core.products import N_VERTICES_PER_HEMI
from tribe_core.products.meshes import load_fsaverage5, load_fsaverage5_sulcal

#: (elev, azim) in degrees per view and hemisphere, as nilearn's plot_surf.
_CAMERA = {
    ("left", "lateral"): (0, 180),
    ("left", "medial"): (0, 0),
    ("right", "lateral"): (0, 0),
    ("right", "medial"): (0, 180),
    ("dorsal", None): (90, 0),
    ("ventral", None): (-90, 0),
    ("anterior", None): (0, 90),
    ("posterior", None): (0, 270),
}
#: Pixels per millimetre of the inflated mesh at ``scale=1``.
PX_PER_MM = 1.6
_SAMPLE_SPACING_PX = 0.6


@dataclass
class Raster:
    """Per-pixel lookup for one (hemisphere, view).

    Attributes
    ----------
    shape
        ``(height, width)`` in pixels.
    pixels
        ``[n]`` flat indices of the pixels covered by the brain.
    vertices
        ``[n, 3]`` vertex indices (0..10241) of the triangle seen at each pixel.
    weights
        ``[n, 3]`` barycentric weights of the pixel centre in that triangle.
    shade
        ``[n]`` Lambert shading factor in ``[0, 1]`` (smooth vertex normals).
    """

    shape: tuple[int, int]
    pixels: np.ndarray
    vertices: np.ndarray
    weights: np.ndarray
    shade: np.ndarray

    def sample(self, values: np.ndarray) -> np.ndarray:
        """Interpolate ``[10242]`` vertex values at the covered pixels ``[n]``."""
        v, w = self.vertices_t, self.weights_t
        return values[v[0]] * w[0] + values[v[1]] * w[1] + values[v[2]] * w[2]

    @functools.cached_property
    def vertices_t(self) -> np.ndarray:
        """``[3, n]`` contiguous copy of ``vertices`` (fast gathers)."""
        return np.ascontiguousarray(self.vertices.T)

    @functools.cached_property
    def weights_t(self) -> np.ndarray:
        """``[3, n]`` contiguous copy of ``weights``."""
        return np.ascontiguousarray(self.weights.T)


def _camera(hemi: str, view: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``right``, ``up`` and ``toward-viewer`` unit vectors of the view."""
    elev, azim = _CAMERA.get((hemi, view)) or _CAMERA[(view, None)]
    e, a = np.deg2rad(elev), np.deg2rad(azim)
    toward = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    up = np.array([0.0, 1.0, 0.0]) if abs(elev) == 90 else np.array([0.0, 0.0, 1.0])
    right = np.cross(up, toward)
    right /= np.linalg.norm(right)
    up = np.cross(toward, right)
    return right, up, toward


def _vertex_normals(coords: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = coords[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(coords)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / (np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12)


def _bary_grid(n: int) -> np.ndarray:
    ij = [(i, j) for i in range(n + 1) for j in range(n + 1 - i)]
    return np.array([(i / n, j / n, 1.0 - (i + j) / n) for i, j in ij], dtype=np.float32)


@functools.lru_cache(maxsize=32)
def raster(hemi: str, view: str, scale: float = 1.0) -> Raster:
    """Rasterise the inflated fsaverage5 ``hemi`` seen from ``view`` (cached).

    Triangles are sampled densely (< 1 pixel apart), each sample keeps the nearest
    triangle in depth (z-buffer), and pinholes inside the silhouette are filled from
    their nearest covered pixel.
    """
    from scipy import ndimage

    mesh = load_fsaverage5("inflated")[0 if hemi == "left" else 1]
    right, up, toward = _camera(hemi, view)
    px_per_mm = PX_PER_MM * scale
    u = mesh.coordinates @ right * px_per_mm
    v = mesh.coordinates @ up * px_per_mm
    depth = mesh.coordinates @ toward
    margin = 4
    u0, v1 = u.min() - margin, v.max() + margin
    width = int(np.ceil(u.max() - u0 + margin))
    height = int(np.ceil(v1 - v.min() + margin))
    screen = np.stack([u - u0, v1 - v], axis=1).astype(np.float32)  # (x, y) with y down

    faces = mesh.faces
    face_n = np.cross(
        mesh.coordinates[faces[:, 1]] - mesh.coordinates[faces[:, 0]],
        mesh.coordinates[faces[:, 2]] - mesh.coordinates[faces[:, 0]],
    )
    outward = np.sign(np.sum(face_n * (mesh.coordinates[faces].mean(1) - mesh.coordinates.mean(0))))
    # The hemisphere is a closed surface: faces turned away are hidden, skip them.
    front = np.flatnonzero(outward * (face_n @ toward) > -1e-9)
    tri = screen[faces[front]]
    longest = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    n_sub = np.clip(np.ceil(longest / _SAMPLE_SPACING_PX), 1, 64).astype(int)
    flats, depths, owners = [], [], []
    for n in np.unique(n_sub):
        sel = np.flatnonzero(n_sub == n)
        grid = _bary_grid(int(n))
        pts = np.einsum("kc,fcx->fkx", grid, tri[sel])
        z = np.einsum("kc,fc->fk", grid, depth[faces[front[sel]]].astype(np.float32))
        col = np.clip(pts[..., 0].astype(np.int64), 0, width - 1)
        row = np.clip(pts[..., 1].astype(np.int64), 0, height - 1)
        flats.append((row * width + col).ravel())
        depths.append(z.ravel())
        owners.append(np.repeat(front[sel], grid.shape[0]))
    flat, z, face = np.concatenate(flats), np.concatenate(depths), np.concatenate(owners)
    best_key = np.full(height * width, -np.inf, dtype=np.float32)
    np.maximum.at(best_key, flat, z)  # z-buffer: the sample nearest the viewer wins
    win = z >= best_key[flat]
    best_face = np.full(height * width, -1, dtype=np.int64)
    best_face[flat[win]] = face[win]

    covered = (best_face >= 0).reshape(height, width)
    holes = ndimage.binary_fill_holes(covered) & ~covered
    if holes.any():
        _, (ri, ci) = ndimage.distance_transform_edt(~covered, return_indices=True)
        src = ri[holes] * width + ci[holes]
        best_face[np.flatnonzero(holes.ravel())] = best_face[src]
    pixels = np.flatnonzero(best_face >= 0)
    face = best_face[pixels]
    verts = faces[face]
    # Barycentric weights of the pixel centre in its triangle (clipped: filled pinholes).
    centre = np.stack([pixels % width + 0.5, pixels // width + 0.5], axis=1)
    a, b, c = (screen[verts[:, k]].astype(np.float64) for k in range(3))
    v0, v1_, v2 = b - a, c - a, centre - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1_).sum(1), (v1_ * v1_).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1_).sum(1)
    denom = d00 * d11 - d01 * d01
    denom[np.abs(denom) < 1e-12] = 1e-12
    wb = (d11 * d20 - d01 * d21) / denom
    wc = (d00 * d21 - d01 * d20) / denom
    weights = np.clip(np.stack([1 - wb - wc, wb, wc], axis=1), 0, 1)
    weights /= weights.sum(axis=1, keepdims=True) + 1e-12
    normals = _vertex_normals(mesh.coordinates, faces)
    lambert = np.abs((normals[verts] * weights[..., None]).sum(axis=1) @ toward)
    shade = (0.45 + 0.55 * np.clip(lambert, 0, 1)).astype(np.float32)
    return Raster((height, width), pixels, verts, weights.astype(np.float32), shade)


@functools.lru_cache(maxsize=32)
def _background(hemi: str, view: str, scale: float) -> np.ndarray:
    """Grey level per covered pixel from sulcal depth (sulci darker)."""
    r = raster(hemi, view, scale)
    sulc = load_fsaverage5_sulcal()[0 if hemi == "left" else 1]
    return (0.68 - 0.16 * np.tanh(r.sample(sulc) / 0.5)).astype(np.float32)


def render_panel(
    values: np.ndarray,
    hemi: str,
    view: str,
    *,
    lut: np.ndarray,
    vmin: float,
    vmax: float,
    threshold: float | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """Render one hemisphere's ``[10242]`` values as an RGBA image ``[H, W, 4]`` float32.

    Parameters
    ----------
    lut
        ``[n_colors, 4]`` RGBA colour table spanning ``vmin..vmax``.
    threshold
        Values with ``|value| < threshold`` show the sulcal background instead.
    """
    if values.shape != (N_VERTICES_PER_HEMI,):
        raise ValueError(f"expected [{N_VERTICES_PER_HEMI}] values, got {values.shape}")
    r = raster(hemi, view, scale)
    values = values.astype(np.float32, copy=False)
    missing = np.isnan(values)
    sampled = r.sample(np.where(missing, 0.0, values) if missing.any() else values)
    span = (vmax - vmin) or 1.0
    idx = (sampled - vmin) * ((len(lut) - 1) / span) + 0.5
    np.clip(idx, 0, len(lut) - 1, out=idx)
    rgb = lut[idx.astype(np.int64), :3]
    hidden = None
    if missing.any():
        hidden = missing[r.vertices].any(axis=1)
    if threshold is not None:
        below = np.abs(sampled) < threshold
        hidden = below if hidden is None else hidden | below
    if hidden is not None and hidden.any():
        rgb[hidden] = _background(hemi, view, scale)[hidden, None]
    rgb *= r.shade[:, None]
    image = np.ones((r.shape[0] * r.shape[1], 4), dtype=np.float32)
    image[:, 3] = 0.0
    image[r.pixels, :3] = rgb
    image[r.pixels, 3] = 1.0
    return image.reshape(r.shape[0], r.shape[1], 4)

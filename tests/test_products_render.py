"""The raster renderer: coverage, barycentric interpolation, depth order, hemisphere order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from tribe_core.products import plots, render
from tribe_core.products.meshes import load_fsaverage5


@pytest.mark.parametrize(("hemi", "view"), [("left", "lateral"), ("right", "medial"),
                                            ("left", "dorsal"), ("right", "anterior")])  # fmt: skip
def test_raster_covers_silhouette_and_interpolates_linearly(hemi: str, view: str) -> None:
    r = render.raster(hemi, view)
    h, w = r.shape
    covered = np.zeros(h * w, dtype=bool)
    covered[r.pixels] = True
    covered = covered.reshape(h, w)
    assert covered.sum() > 15_000
    assert (ndimage.binary_fill_holes(covered) == covered).all()  # no pinholes
    np.testing.assert_allclose(r.weights.sum(axis=1), 1.0, atol=1e-5)
    assert r.weights.min() >= 0
    # Interpolating the screen x coordinate of each vertex gives back the pixel's x.
    mesh = load_fsaverage5("inflated")[0 if hemi == "left" else 1]
    right, up, toward = render._camera(hemi, view)
    u = mesh.coordinates @ right * render.PX_PER_MM
    x_pixel = r.pixels % w + 0.5
    x_interp = r.sample(u) - (u.min() - 4)
    assert np.median(np.abs(x_interp - x_pixel)) < 0.3
    # The visible surface faces the viewer: interpolated depth is the front-most.
    depth = mesh.coordinates @ toward
    assert np.median(r.sample(depth)) > np.median(depth)


def test_left_hemisphere_is_drawn_left(tmp_path: Path) -> None:
    values = np.concatenate([np.ones(10242), -np.ones(10242)]).astype(np.float32)
    fig = plots.render_maps(values, [""], views=("lateral",), cmap="RdBu_r", colorbar_label=None)
    path = plots.save_figure(fig, tmp_path / "lr.png")
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    half = rgb.shape[1] // 2
    red = (rgb[..., 0] - rgb[..., 2]) > 60
    blue = (rgb[..., 2] - rgb[..., 0]) > 60
    assert red[:, :half].sum() > 10_000 and red[:, half:].sum() < 100
    assert blue[:, half:].sum() > 10_000 and blue[:, :half].sum() < 100


def test_nilearn_engine_still_available(tmp_path: Path) -> None:
    values = np.concatenate([np.ones(10242), -np.ones(10242)]).astype(np.float32)
    fig = plots.render_maps(values, ["map"], views=("lateral",), cmap="RdBu_r", engine="nilearn")
    rgb = np.asarray(Image.open(plots.save_figure(fig, tmp_path / "n.png")).convert("RGB"))
    red = (rgb[..., 0].astype(int) - rgb[..., 2]) > 60
    assert red.sum() > 2_000


def test_shipped_meshes_equal_nilearn_api() -> None:
    from nilearn import datasets

    from tribe_core.products.meshes import load_fsaverage5_sulcal

    bunch = datasets.load_fsaverage("fsaverage5")
    for surface in ("pial", "white_matter", "inflated", "sphere"):
        for h, mesh in zip(("left", "right"), load_fsaverage5(surface), strict=True):
            np.testing.assert_array_equal(mesh.coordinates, bunch[surface].parts[h].coordinates)
            np.testing.assert_array_equal(mesh.faces, bunch[surface].parts[h].faces)
    sulc = datasets.load_fsaverage_data("fsaverage5", data_type="sulcal")
    np.testing.assert_array_equal(load_fsaverage5_sulcal()[1], sulc.data.parts["right"])


def test_cold_hot_matches_nilearn() -> None:
    ours = plots._cold_hot()
    from nilearn.plotting.cm import _cmap_d

    x = np.linspace(0, 1, 101)
    np.testing.assert_allclose(ours(x), _cmap_d["cold_hot"](x), atol=0.02)
    assert plots._colormap("viridis").name == "viridis"
    with pytest.raises(Exception, match="unknown colormap"):
        plots._colormap("no_such_map")

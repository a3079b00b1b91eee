"""GIFTI and NIfTI outputs, opened back with nibabel and checked voxel by voxel."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets
from scipy.spatial import cKDTree

from tribe_core.errors import TribeInputError
from tribe_core.products import volumes
from tribe_core.products.meshes import load_fsaverage5


@pytest.fixture(scope="module")
def vertex_ids() -> np.ndarray:
    """Three TRs whose value at each vertex identifies the vertex (id, -id, 2*id)."""
    ids = np.arange(20484, dtype=np.float32) + 1.0
    return np.stack([ids, -ids, 2 * ids])


@pytest.fixture(scope="module")
def nifti(vertex_ids: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> nib.Nifti1Image:
    path = volumes.write_nifti(vertex_ids, tmp_path_factory.mktemp("nii") / "pred.nii.gz", tr_s=1.5)
    return nib.load(path)


def _surface_points() -> tuple[np.ndarray, np.ndarray]:
    """White, mid and pial points of every vertex and the vertex (0..20483) of each."""
    white, pial = load_fsaverage5("white_matter"), load_fsaverage5("pial")
    pts, owner = [], []
    for h in (0, 1):
        for depth in np.linspace(0, 1, 7):
            pts.append((1 - depth) * white[h].coordinates + depth * pial[h].coordinates)
            owner.append(np.arange(10242) + 10242 * h)
    return np.concatenate(pts), np.concatenate(owner)


def test_gifti_round_trip(tmp_path: Path, vertex_ids: np.ndarray) -> None:
    lh, rh = volumes.write_gifti(vertex_ids, tmp_path, tr_s=1.5)
    assert (lh.name, rh.name) == ("predictions.lh.func.gii", "predictions.rh.func.gii")
    for path, part, structure in ((lh, slice(0, 10242), "CortexLeft"),
                                  (rh, slice(10242, None), "CortexRight")):  # fmt: skip
        img = nib.load(path)
        assert len(img.darrays) == 3
        assert img.meta["AnatomicalStructurePrimary"] == structure
        assert img.meta["TimeStep"] == "1500"
        assert img.darrays[0].intent == nib.nifti1.intent_codes["NIFTI_INTENT_TIME_SERIES"]
        data = np.stack([d.data for d in img.darrays])
        assert data.dtype == np.float32
        np.testing.assert_array_equal(data, vertex_ids[:, part])


def test_nifti_grid_is_mni152_2mm(nifti: nib.Nifti1Image) -> None:
    template = datasets.load_mni152_template(resolution=2)
    assert nifti.shape == (99, 117, 95, 3)
    np.testing.assert_allclose(nifti.affine, template.affine)
    assert nifti.header.get_zooms() == (2.0, 2.0, 2.0, 1.5)
    assert int(nifti.header["sform_code"]) == 4
    assert nifti.get_data_dtype() == np.float32


def test_ribbon_voxels_carry_nearest_vertex(nifti: nib.Nifti1Image) -> None:
    data = np.asarray(nifti.dataobj)
    first = data[..., 0]
    # Other TRs are the same map scaled: volumes are written in the right order.
    np.testing.assert_array_equal(data[..., 1], -first)
    np.testing.assert_array_equal(data[..., 2], 2 * first)
    ribbon = np.argwhere(first != 0)
    assert 60_000 < len(ribbon) < 150_000
    points, owner = _surface_points()
    centers = nib.affines.apply_affine(nifti.affine, ribbon)
    # The value is the id of the vertex whose white-to-pial column is nearest.
    d_ribbon, nearest = cKDTree(points).query(centers)
    np.testing.assert_array_equal(first[tuple(ribbon.T)], owner[nearest] + 1)
    # Ribbon voxels touch the surfaces (columns are 3 mm apart, up to 8 mm on big faces).
    assert np.median(d_ribbon) < 1.5 and d_ribbon.max() < 6.0
    # ...and voxels far from both surfaces (deep white matter, outside the brain) stay 0.
    grid = np.argwhere(np.ones(first.shape, dtype=bool))[::7]
    d_all, _ = cKDTree(points).query(nib.affines.apply_affine(nifti.affine, grid))
    far = grid[d_all > 4.0]
    assert len(far) > 100_000 / 7
    assert not first[tuple(far.T)].any()


def test_vertex_mid_thickness_voxel_has_vertex_value(nifti: nib.Nifti1Image) -> None:
    white, pial = load_fsaverage5("white_matter"), load_fsaverage5("pial")
    first = np.asarray(nifti.dataobj)[..., 0]
    mid = 0.5 * (white[0].coordinates + pial[0].coordinates)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(nifti.affine), mid)).astype(int)
    own = first[tuple(ijk.T)] == np.arange(10242) + 1
    # A 2 mm voxel holds several vertices' columns where vertices are dense; most keep theirs.
    assert own.mean() > 0.5
    assert (first[tuple(ijk.T)] != 0).all()


def test_smoothing_stays_in_ribbon(tmp_path: Path) -> None:
    ones = np.ones((2, 20484), dtype=np.float32)
    raw = np.asarray(nib.load(volumes.write_nifti(ones, tmp_path / "r.nii")).dataobj)
    smooth = volumes.surface_to_volume(ones, smoothing_fwhm_mm=6.0)
    inside = raw[..., 0] != 0
    # Normalised convolution: a constant map stays constant, nothing leaks outside.
    np.testing.assert_allclose(smooth[..., 0][inside], 1.0, rtol=1e-5)
    assert not smooth[..., 0][~inside].any()
    noise = np.random.default_rng(0).standard_normal((1, 20484)).astype(np.float32)
    rough = volumes.surface_to_volume(noise)[..., 0][inside]
    soft = volumes.surface_to_volume(noise, smoothing_fwhm_mm=6.0)[..., 0][inside]
    assert soft.std() < 0.6 * rough.std()


def test_bad_output_name(tmp_path: Path) -> None:
    with pytest.raises(TribeInputError, match=r"\.nii"):
        volumes.write_nifti(np.zeros((1, 20484)), tmp_path / "x.img")


@pytest.mark.slow
def test_long_nifti_is_streamed(tmp_path: Path) -> None:
    n_trs = 400
    rows = np.random.default_rng(0).standard_normal((n_trs, 20484)).astype(np.float32)
    path = volumes.write_nifti(rows, tmp_path / "long.nii.gz", smoothing_fwhm_mm=4.0)
    img = nib.load(path)
    assert img.shape == (99, 117, 95, n_trs)
    voxels, vertex = volumes.ribbon_map()
    last = np.asarray(img.dataobj[..., n_trs - 1])
    # Smoothed within the ribbon: the last volume correlates with its own surface map.
    raw = volumes.surface_to_volume(rows[-1:])[..., 0]
    inside = tuple(voxels.T)
    assert np.corrcoef(last[inside], raw[inside])[0, 1] > 0.3
    assert not last[raw == 0].any()


def test_parallel_blocks_write_the_same_image(tmp_path: Path) -> None:
    """19 TRs (blocks of 8: a partial last block) by 3 threads == one thread == in memory."""
    import gzip
    import shutil
    import subprocess

    rows = np.random.default_rng(1).standard_normal((19, 20484)).astype(np.float32)
    one = volumes.write_nifti(rows, tmp_path / "one.nii.gz", threads=1)
    three = volumes.write_nifti(rows, tmp_path / "three.nii.gz", threads=3)
    plain = volumes.write_nifti(rows, tmp_path / "plain.nii", threads=3)
    # Several gzip members that decompress to one NIfTI byte stream.
    with gzip.open(three, "rb") as fh:
        assert fh.read() == plain.read_bytes()
    assert gzip.decompress(one.read_bytes()) == plain.read_bytes()
    if shutil.which("gzip"):
        subprocess.run(["gzip", "-t", str(three)], check=True)
    expected = volumes.surface_to_volume(rows)
    for path in (one, three, plain):
        img = nib.load(path)
        assert img.shape == (99, 117, 95, 19)
        np.testing.assert_array_equal(np.asarray(img.dataobj), expected)

"""Brain maps and movies: real PNG/MP4/GIF files, checked by their pixels and frames."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from tribe_core.errors import TribeInputError
from tribe_core.products import plots
from tribe_core.products.meshes import load_fsaverage5


def smooth_predictions(n_trs: int) -> np.ndarray:
    """Smooth travelling patterns on the sphere ``[n_trs, 20484]`` (looks like brain maps)."""
    left, right = load_fsaverage5("sphere")
    xyz = np.concatenate([left.coordinates, right.coordinates]) / 100.0
    t = np.arange(n_trs)[:, None]
    maps = np.sin(3 * xyz[:, 1] + 0.5 * t) * np.cos(2 * xyz[:, 2])
    return maps.astype(np.float32)


def _colored_fraction(path: Path) -> float:
    """Fraction of pixels with a clearly non-grey colour (the data, not background/sulci)."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return float(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).mean())


def test_mosaic_and_mean(tmp_path: Path) -> None:
    preds = smooth_predictions(6)
    paths = plots.plot_brain_maps(preds, tmp_path, trs=[1, 4], tr_start_s=np.arange(6) * 1.5)
    assert [p.name for p in paths] == ["brain_mean.png", "brain_mosaic.png"]
    mean_img, mosaic = (Image.open(p) for p in paths)
    # Mosaic: time-mean + 2 TRs = 3 rows of 4 panels; the mean figure has one row.
    assert mosaic.width == mean_img.width
    assert mosaic.height > 2.5 * mean_img.height > 0
    assert mosaic.width > 800
    arr = np.asarray(mosaic.convert("RGB"))
    assert len(np.unique(arr.reshape(-1, 3), axis=0)) > 500
    assert _colored_fraction(paths[1]) > 0.1
    # A threshold above every value leaves only the grey sulcal background.
    hidden = plots.plot_brain_maps(preds, tmp_path / "thr", trs=[1], threshold=10.0)
    assert _colored_fraction(hidden[1]) < 0.2 * _colored_fraction(paths[1])


def test_all_views_and_bad_arguments(tmp_path: Path) -> None:
    preds = smooth_predictions(2)
    paths = plots.plot_brain_maps(preds, tmp_path, trs=[], all_views=True)
    views = Image.open(paths[-1])
    assert paths[-1].name == "brain_views.png" and views.width > views.height
    with pytest.raises(TribeInputError, match="out of range"):
        plots.plot_brain_maps(preds, tmp_path, trs=[5])
    with pytest.raises(TribeInputError, match="views"):
        plots.plot_brain_maps(preds, tmp_path, views=("sideways",))


def test_color_limits() -> None:
    values = np.array([-4.0, 1.0, 2.0, 3.0])
    lo, hi = plots.color_limits(values, percentile=100)
    assert (lo, hi) == (-4.0, 4.0)
    lo, hi = plots.color_limits(values, symmetric=False, percentile=100)
    assert (lo, hi) == (-4.0, 3.0)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
def test_movie_mp4_has_one_frame_per_tr(tmp_path: Path) -> None:
    out = plots.make_movie(smooth_predictions(4), tmp_path / "movie.mp4", fps=2)
    assert out.suffix == ".mp4"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames,codec_name,duration", "-of", "json", str(out)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264"
    assert int(stream["nb_read_frames"]) == 4
    assert float(stream["duration"]) == pytest.approx(2.0, abs=0.05)


def test_movie_gif(tmp_path: Path) -> None:
    out = plots.make_movie(smooth_predictions(3), tmp_path / "movie.gif", fps=4)
    with Image.open(out) as gif:
        assert gif.n_frames == 3
        assert gif.info["duration"] == 250
        frames = []
        for i in range(3):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert not np.array_equal(frames[0], frames[2])  # the map moves between TRs


def test_movie_frames_from_worker_processes_equal_one_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plots, "MIN_FRAMES_PER_WORKER", 3)  # 6 frames: two workers
    preds = smooth_predictions(6)
    style = {
        "views": ("lateral",), "cmap": "cold_hot", "threshold": None, "symmetric": True,
        "tr_start_s": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "scale": 0.5, "engine": "raster",
    }  # fmt: skip
    one = list(plots._frames(preds, **style, workers=1))
    with caplog.at_level("INFO", logger=plots.__name__):
        two = list(plots._frames(preds, **style, workers=2))
    assert "6 frames drawn by 2 processes" in caplog.text
    assert len(one) == len(two) == 6
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)  # same pixels, same order
    assert not np.array_equal(one[0], one[5])


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
def test_parallel_movie_from_a_script_without_main_guard(tmp_path: Path) -> None:
    """As Snakemake runs a stage: a plain script (no ``if __name__ == "__main__"``)."""
    out = tmp_path / "movie.mp4"
    script = tmp_path / "stage.py"
    script.write_text(
        "import numpy as np\n"
        "from tribe_core.products import plots\n"
        "rows = np.random.default_rng(0).standard_normal((52, 20484)).astype(np.float32)\n"
        f"plots.make_movie(rows, {str(out)!r}, views=('lateral',), scale=0.4, workers=2)\n"
        "print('done', flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done") == 1  # the stage ran once, not again in each worker
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "json", str(out)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    assert int(json.loads(probe.stdout)["streams"][0]["nb_read_frames"]) == 52

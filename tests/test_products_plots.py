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


def _probe(path: Path) -> dict:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames,codec_name,duration,r_frame_rate",
         "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return json.loads(probe.stdout)["streams"][0]


def _decoded_frames(path: Path, width: int = 64) -> np.ndarray:
    """Every decoded frame of a movie, scaled to ``width`` px: ``[n, h, width, 3]`` uint8."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={width}:-2",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    size = json.loads(probe.stdout)["streams"][0]
    height = int(round(size["height"] * width / size["width"] / 2)) * 2
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_movie_is_encoded_with_the_veryfast_preset(tmp_path: Path) -> None:
    """x264 writes its settings into the stream: veryfast's (subme=2, ref=1), not medium's."""
    out = plots.make_movie(
        smooth_predictions(2), tmp_path / "movie.mp4", views=("lateral",), scale=0.4
    )
    data = out.read_bytes()
    settings = data[data.index(b"x264 - core") :].split(b"\x00", 1)[0]
    assert b" subme=2 " in settings and b" ref=1 " in settings, settings[:300]
    medium = tmp_path / "medium.mp4"
    frames = iter([np.zeros((64, 64, 3), np.uint8)] * 2)
    plots._write_mp4(frames, medium, 1.0, 25, x264_args=())
    assert b" subme=7 " in medium.read_bytes()  # the check tells the presets apart


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
@pytest.mark.parametrize("tr_s", [1.0, 1.49])
def test_movie_mp4_plays_in_stimulus_time(tmp_path: Path, tr_s: float) -> None:
    """Each TR's frame lasts one TR: the movie lasts n_trs * TR, at a standard 25 fps."""
    out = plots.make_movie(
        smooth_predictions(4), tmp_path / "movie.mp4", tr_s=tr_s, views=("lateral",), scale=0.4
    )
    assert out.suffix == ".mp4"
    stream = _probe(out)
    assert stream["codec_name"] == "h264" and stream["r_frame_rate"] == "25/1"
    assert float(stream["duration"]) == pytest.approx(4 * tr_s, abs=1 / 25)
    assert int(stream["nb_read_frames"]) == pytest.approx(4 * tr_s * 25, abs=1)
    # The frame changes only at TR boundaries: 4 runs of equal frames, one per TR.
    frames = _decoded_frames(out).astype(int)
    changes = np.flatnonzero(np.abs(np.diff(frames, axis=0)).max(axis=(1, 2, 3)) > 40) + 1
    np.testing.assert_allclose(changes / 25, tr_s * np.arange(1, 4), atol=1 / 25)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
def test_movie_holds_dropped_trs_on_the_stimulus_clock(tmp_path: Path) -> None:
    """Rows of TRs 0, 1, 4 of a 6-TR stimulus: 6 TRs of movie, the gaps drawn bare."""
    out = plots.make_movie(
        smooth_predictions(3), tmp_path / "movie.mp4", tr_s=1.0, tr_start_s=[0.0, 1.0, 4.0],
        n_trs=6, views=("lateral",), scale=0.4,
    )  # fmt: skip
    assert float(_probe(out)["duration"]) == pytest.approx(6.0, abs=1 / 25)
    frames = _decoded_frames(out, width=160).astype(int)
    colour = (frames.max(axis=3) - frames.min(axis=3) > 60).mean(axis=(1, 2))
    per_tr = [float(colour[25 * k + 12]) for k in range(6)]  # mid-TR frames
    data, gaps = [per_tr[i] for i in (0, 1, 4)], [per_tr[i] for i in (2, 3, 5)]
    assert min(data) > 0.15  # maps in colour
    assert max(gaps) < 0.1 * min(data)  # grey brain (only the colourbar has colour)
    with pytest.raises(TribeInputError, match="6 TRs"):
        plots.make_movie(smooth_predictions(3), tmp_path / "x.mp4", tr_start_s=[0, 1, 6], n_trs=6)


def test_movie_gif(tmp_path: Path) -> None:
    out = plots.make_movie(smooth_predictions(3), tmp_path / "movie.gif", tr_s=0.25)
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
        "timeline": plots.movie_timeline(6), "scale": 0.5, "engine": "raster",
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
    assert float(_probe(out)["duration"]) == pytest.approx(52.0, abs=1 / 25)  # 52 TRs of 1 s

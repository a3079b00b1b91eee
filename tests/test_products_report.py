"""Stimulus-aligned HTML report built from a real video, events and plot files."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tribe_core.products import report

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("media") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=size=160x120:rate=10:duration=8", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         str(out)],
        check=True,
    )  # fmt: skip
    return out


def test_report_puts_frames_words_and_maps_on_one_timeline(video: Path, tmp_path: Path) -> None:
    n_trs = 8
    preds = np.random.default_rng(0).standard_normal((n_trs, 20484)).astype(np.float32)
    trs = pd.DataFrame({"tr_start_s": np.arange(n_trs, dtype=float), "kept": True})
    events = pd.DataFrame(
        {
            "type": ["Video", "Word", "Word", "Word"],
            "start": [0.0, 0.5, 2.0, 6.25],
            "duration": [8.0, 0.4, 0.5, 0.5],
            "text": ["", "hello", "<b>brain</b>", "world"],
        }
    )
    png = tmp_path / "brain_mosaic.png"
    png.write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    ))  # fmt: skip
    out = report.write_report(
        "clip", preds, trs, events, [png], tmp_path / "out" / "report.html",
        media_path=video, n_brain_maps=3,
    )  # fmt: skip
    page = out.read_text()
    assert "tribeflow report: clip" in page
    # Words are placed at start * px_per_s; escaped, never raw HTML.
    px_per_s = float(re.search(r"const pps=([0-9.]+)", page).group(1))
    x0 = float(re.search(r"const x0=([0-9.]+)", page).group(1))
    assert "&lt;b&gt;brain&lt;/b&gt;" in page and "<b>brain</b>" not in page
    x_world = float(re.search(r'<text x="([0-9.]+)"[^>]*class="wlabel">world<', page).group(1))
    assert x_world == pytest.approx(x0 + 6.25 * px_per_s + 1, abs=0.2)
    # Video frames (JPEG) and brain thumbnails (PNG) are inlined on the timeline.
    frames = re.findall(r'<image x="([0-9.]+)" y="\d+" width="\d+" href="data:image/jpeg', page)
    assert len(frames) >= 3 and float(frames[0]) == x0
    brains = re.findall(
        r'<image x="([0-9.]+)" y="\d+" width="(\d+)" href="data:image/png;base64,([^"]+)"', page
    )
    assert 2 <= len(brains) <= 3  # as many as fit without overlap, at most n_brain_maps
    xs = [float(x) for x, _, _ in brains]
    assert xs[0] == x0 and all(np.diff(xs) >= int(brains[0][1]))
    assert base64.b64decode(brains[0][2])[:4] == b"\x89PNG"
    # Plot files are inlined below; the media is linked relative to the report.
    assert page.count("data:image/png;base64") == len(brains) + 1
    assert 'src="../' in page and "clip.mp4" in page


def test_report_without_media_or_words(tmp_path: Path) -> None:
    preds = np.zeros((3, 20484), dtype=np.float32)
    top = pd.DataFrame({"rank": [1, 2], "roi": ["V1", "<STSdp>"], "mean": [0.5, 0.25]})
    out = report.write_report(
        "txt", preds, None, None, [], tmp_path / "r.html", n_brain_maps=1, roi_top=top
    )
    page = out.read_text()
    assert "Most responsive ROIs" in page and "&lt;STSdp&gt;" in page and "<td>0.25</td>" in page
    assert "<video" not in page and "image/jpeg" not in page
    assert page.count('class="wlabel"') == 0

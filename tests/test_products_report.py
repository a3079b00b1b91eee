"""Stimulus-aligned HTML report built from a real video, events and plot files."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
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
    # Plot files are inlined below, and so is the video for the player.
    assert page.count("data:image/png;base64") == len(brains) + 1
    player = re.search(r'<video id="media" src="data:video/mp4;base64,([^"]+)"', page)
    assert player and base64.b64decode(player.group(1)) == video.read_bytes()


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


class _Links(HTMLParser):
    """Every URL-valued attribute of a page (``src``, ``href``, ``poster``, ``data``...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "poster", "data", "srcset", "action"):
                self.urls.append((tag, name, value or ""))


def _local_references(page: str) -> list[tuple[str, str, str]]:
    """URLs that are neither data URIs, web addresses nor in-page anchors."""
    parser = _Links()
    parser.feed(page)
    assert parser.urls  # the page does reference things (images, the player)
    ok = ("data:", "http://", "https://", "#")
    return [(t, n, v[:80]) for t, n, v in parser.urls if not v.startswith(ok)]


def _report(media: Path, out: Path) -> Path:
    preds = np.random.default_rng(1).standard_normal((8, 20484)).astype(np.float32)
    trs = pd.DataFrame({"tr_start_s": np.arange(8, dtype=float), "kept": True})
    events = pd.DataFrame({"type": ["Word"], "start": [1.0], "duration": [0.5], "text": ["hello"]})
    return report.write_report("clip", preds, trs, events, [], out, media_path=media)


def test_report_moved_alone_references_no_local_file(video: Path, tmp_path: Path) -> None:
    """As ``snakemake --report`` zips it: the page alone, away from the results."""
    out = _report(video, tmp_path / "results" / "clip" / "report.html")
    moved = shutil.move(out, tmp_path / "elsewhere.html")
    shutil.rmtree(tmp_path / "results")
    page = Path(moved).read_text()
    assert _local_references(page) == []
    assert '<video id="media" src="data:video/mp4;base64,' in page
    assert str(video.parent) not in page and "clip.mp4, embedded." in page


def test_report_embeds_a_preview_of_a_format_browsers_may_not_play(tmp_path: Path) -> None:
    mkv = tmp_path / "clip.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:duration=4",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
         "-c:v", "mpeg4", "-c:a", "mp2", str(mkv)],
        check=True,
    )  # fmt: skip
    page = _report(mkv, tmp_path / "report.html").read_text()
    assert _local_references(page) == []
    uri = re.search(r'<video id="media" src="data:video/mp4;base64,([^"]+)"', page)
    assert uri and "clip.mkv, embedded as a compressed preview." in page
    preview = tmp_path / "preview.mp4"
    preview.write_bytes(base64.b64decode(uri.group(1)))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width:format=duration",
         "-of", "json", str(preview)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    info = json.loads(probe.stdout)
    assert [s["codec_name"] for s in info["streams"]] == ["h264", "aac"]
    assert info["streams"][0]["width"] == 320
    assert float(info["format"]["duration"]) == pytest.approx(4.0, abs=0.1)


def test_report_of_a_stimulus_too_large_to_embed(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the limit (here lowered to 1 kB), the page says so and still names no file."""
    monkeypatch.setattr(report, "EMBED_MAX_BYTES", 1000)
    page = _report(video, tmp_path / "report.html").read_text()
    assert _local_references(page) == []
    assert "<video" not in page and "clip.mp4 (0.0 MB, 8 s) is not embedded" in page
    assert page.count("data:image/jpeg") >= 3  # the timeline keeps the video's frames


def test_report_embeds_an_audio_stimulus(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
         "-ar", "16000", str(wav)],
        check=True,
    )  # fmt: skip
    page = _report(wav, tmp_path / "report.html").read_text()
    assert _local_references(page) == []
    uri = re.search(r'<audio id="media" src="data:audio/wav;base64,([^"]+)"', page)
    assert uri and base64.b64decode(uri.group(1)) == wav.read_bytes()

"""Stimulus-aligned HTML report: video frames, words and brain maps on one timeline.

The report is one self-contained HTML file: it names no other file, so it still
works when moved, mailed or zipped by ``snakemake --report``. Images (video frames,
brain maps, plots) are inlined as base64 data URIs, and so is the stimulus for the
page's player: as it is when browsers play its format and it is at most
:data:`EMBED_MAX_BYTES`, else as a small H.264/AAC preview made by ffmpeg when that
fits the same limit; a longer stimulus gets no player (the page says so) and keeps
its frames on the timeline. The player's playhead moves a cursor over the
timeline, and clicking the timeline seeks the media.
"""

from __future__ import annotations

import base64
import html
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tribe_core.io.atomic import write_text_atomic
from tribe_core.products.meshes import as_predictions
from tribe_core.products.rois import align_trs

_VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm"}
_AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg"}
#: Containers every current browser plays, embedded as they are.
_PLAYABLE_MIME = {
    ".mp4": "video/mp4", ".webm": "video/webm",
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".flac": "audio/flac",
}  # fmt: skip
#: Largest media file (or preview) inlined into ``report.html``, in bytes.
EMBED_MAX_BYTES = 50 * 1024 * 1024
#: Bit rates of the preview of a stimulus too large or in a format browsers may not play.
_PREVIEW_VIDEO_KBPS, _PREVIEW_AUDIO_KBPS = 250, 64
_THUMB_W = 112
_BRAIN_W = 200
#: Left gutter of the timeline (track names), in pixels.
_X0 = 112


def _b64(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def video_frame_jpeg(media_path: Path, time_s: float, width: int = _THUMB_W) -> bytes | None:
    """One video frame at ``time_s`` as JPEG bytes (ffmpeg), or ``None`` if it fails."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    cmd = [
        ffmpeg, "-v", "error", "-ss", f"{max(time_s, 0.0):.3f}", "-i", str(media_path),
        "-frames:v", "1", "-vf", f"scale={width}:-2", "-f", "image2pipe", "-vcodec", "mjpeg",
        "-q:v", "5", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)  # noqa: S603
    return proc.stdout if proc.returncode == 0 and proc.stdout else None


def _preview(media: Path, video: bool, out: Path) -> bool:
    """Write a small browser-playable MP4 of ``media`` (H.264 320 px + AAC mono) at ``out``."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    streams = (
        ["-map", "0:v:0", "-map", "0:a:0?", "-vf", "scale=320:-2", "-c:v", "libx264",
         "-preset", "veryfast", "-b:v", f"{_PREVIEW_VIDEO_KBPS}k", "-pix_fmt", "yuv420p"]
        if video else ["-map", "0:a:0", "-vn"]
    )  # fmt: skip
    cmd = [
        ffmpeg, "-v", "error", "-y", "-i", str(media), *streams,
        "-c:a", "aac", "-b:a", f"{_PREVIEW_AUDIO_KBPS}k", "-ac", "1",
        "-movflags", "+faststart", "-f", "mp4", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=1800)  # noqa: S603
    return proc.returncode == 0 and out.exists() and out.stat().st_size > 0


def embedded_media(media: Path, duration_s: float) -> tuple[str, str | None, str]:
    """The stimulus as the report's player embeds it: ``(tag, data URI or None, note)``.

    ``tag`` is ``"video"`` or ``"audio"``. The URI holds the file itself when
    browsers play its format and it is at most :data:`EMBED_MAX_BYTES`; else an
    ffmpeg preview (:func:`_preview`) when one of ``duration_s`` fits that limit;
    else it is ``None``. ``note`` says which, for the page.
    """
    suffix = media.suffix.lower()
    tag = "video" if suffix in _VIDEO_SUFFIXES else "audio"
    size = media.stat().st_size
    if suffix in _PLAYABLE_MIME and size <= EMBED_MAX_BYTES:
        return tag, _b64(media.read_bytes(), _PLAYABLE_MIME[suffix]), f"{media.name}, embedded."
    kbps = _PREVIEW_AUDIO_KBPS + (_PREVIEW_VIDEO_KBPS if tag == "video" else 0)
    if duration_s * kbps * 1000 / 8 * 1.2 <= EMBED_MAX_BYTES:
        with tempfile.TemporaryDirectory(prefix="tribe-report-") as tmp:
            preview = Path(tmp) / "preview.mp4"
            if _preview(media, tag == "video", preview):
                if preview.stat().st_size <= EMBED_MAX_BYTES:
                    uri = _b64(preview.read_bytes(), f"{tag}/mp4")
                    return tag, uri, f"{media.name}, embedded as a compressed preview."
    note = (
        f"{media.name} ({size / 2**20:.1f} MB, {duration_s:.0f} s) is not embedded: neither "
        f"it nor a preview fits the {EMBED_MAX_BYTES / 2**20:.0f} MB a self-contained report "
        "allows; the timeline shows its frames."
    )
    return tag, None, note


def _brain_thumbnail(values: np.ndarray, vmin: float, vmax: float, label: str) -> bytes:
    """Small PNG of both lateral views of one map, titled ``label``."""
    import io

    import matplotlib.pyplot as plt

    from tribe_core.products.plots import render_maps

    fig = render_maps(
        values[None], [""], views=("lateral",), vmin=vmin, vmax=vmax, colorbar_label=None,
        scale=0.42, title=label,
    )  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _non_overlapping(times_s: np.ndarray, min_gap_s: float) -> list[int]:
    """Indices of ``times_s`` picked left to right, at least ``min_gap_s`` apart."""
    picks: list[int] = []
    for i, t in enumerate(times_s):
        if not picks or t - times_s[picks[-1]] >= min_gap_s:
            picks.append(i)
    return picks


def _time_ticks(duration_s: float, px_per_s: float) -> list[float]:
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if s * px_per_s >= 60)
    return [float(t) for t in np.arange(0.0, duration_s + 1e-9, step)]


def _words(events: pd.DataFrame | None) -> pd.DataFrame:
    if events is None or len(events) == 0 or "type" not in events.columns:
        return pd.DataFrame(columns=["start", "duration", "text"])
    words = events[events["type"] == "Word"]
    return words[["start", "duration", "text"]].reset_index(drop=True)


def _sparkline(values: np.ndarray, times_s: np.ndarray, px_per_s: float, height: int) -> str:
    lo, hi = float(min(values.min(), 0.0)), float(max(values.max(), 0.0))
    span = hi - lo or 1.0

    def y(v: float) -> float:
        return height - 4 - (v - lo) / span * (height - 8)

    pts = " ".join(
        f"{_X0 + t * px_per_s:.1f},{y(v):.1f}" for t, v in zip(times_s, values, strict=True)
    )
    return (
        f'<line x1="{_X0}" x2="{_X0 + times_s[-1] * px_per_s:.1f}" y1="{y(0.0):.1f}" '
        f'y2="{y(0.0):.1f}" class="zero"/>'
        f'<polyline points="{pts}" fill="none" stroke="#c0392b" stroke-width="1.5"/>'
        f'<text x="{_X0 + 3}" y="{y(hi) + 8:.1f}" class="ylabel">{hi:.2g}</text>'
        f'<text x="{_X0 + 3}" y="{y(lo) - 2:.1f}" class="ylabel">{lo:.2g}</text>'
    )


def _timeline_svg(
    duration_s: float,
    px_per_s: float,
    frames: list[tuple[float, str]],
    words: pd.DataFrame,
    brains: list[tuple[float, str]],
    global_mean: np.ndarray,
    tr_times: np.ndarray,
) -> str:
    """SVG with one track per content, all on the same time axis (``x = _X0 + t * px_per_s``)."""
    width = int(math.ceil(_X0 + duration_s * px_per_s)) + _BRAIN_W
    tracks = {"video": 22, "words": 112, "brain": 192, "mean response": 330}
    total_h = 420
    out = [f'<svg id="timeline" width="{width}" height="{total_h}" '
           'xmlns="http://www.w3.org/2000/svg">']  # fmt: skip
    out.append(f'<rect x="0" y="0" width="{_X0 - 6}" height="{total_h}" class="gutter"/>')
    for t in _time_ticks(duration_s, px_per_s):
        x = _X0 + t * px_per_s
        out.append(f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{total_h}" class="tick"/>')
        out.append(f'<text x="{x + 2:.1f}" y="11" class="tlabel">{t:g} s</text>')
    for t, uri in frames:
        out.append(
            f'<image x="{_X0 + t * px_per_s:.1f}" y="{tracks["video"]}" width="{_THUMB_W}" '
            f'href="{uri}"><title>{t:.1f} s</title></image>'
        )
    for i, row in words.iterrows():
        x = _X0 + float(row["start"]) * px_per_s
        w = max(float(row["duration"]) * px_per_s, 2.0)
        y = tracks["words"] + (i % 3) * 24
        text = html.escape(str(row["text"]))
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" class="word">'
            f"<title>{text} {float(row['start']):.2f} s</title></rect>"
        )
        out.append(f'<text x="{x + 1:.1f}" y="{y + 14}" class="wlabel">{text}</text>')
    for t, uri in brains:
        out.append(
            f'<image x="{_X0 + t * px_per_s:.1f}" y="{tracks["brain"]}" width="{_BRAIN_W}" '
            f'href="{uri}"/>'
        )
    if len(global_mean) > 1:
        out.append(f'<g transform="translate(0,{tracks["mean response"]})">')
        out.append(_sparkline(global_mean, tr_times, px_per_s, 80))
        out.append("</g>")
    for name, y in tracks.items():
        out.append(f'<text x="4" y="{y + 14}" class="track">{name}</text>')
    out.append(f'<line id="cursor" x1="{_X0}" y1="14" x2="{_X0}" y2="{total_h}" class="cursor"/>')
    out.append("</svg>")
    return "\n".join(out)


def _roi_table_html(table: pd.DataFrame | None) -> str:
    if table is None or len(table) == 0:
        return ""
    cols = [c for c in ("rank", "roi", "mean", "max", "peak_time_s", "n_vertices") if c in table]
    body = table[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
    return f"<h2>Most responsive ROIs (HCP-MMP1)</h2>{body}"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.scroll{overflow-x:auto;border:1px solid #ccc;background:#fafafa}
.tick{stroke:#ddd}.tlabel{font-size:10px;fill:#666}
.word{fill:#d6e9f8;stroke:#5b9bd5}.wlabel{font-size:11px;fill:#123}
.track{font-size:11px;fill:#555;font-weight:600}.gutter{fill:#fafafa}
.zero{stroke:#bbb;stroke-dasharray:3 3}.ylabel{font-size:9px;fill:#888}
.cursor{stroke:#e74c3c;stroke-width:2}
img.plot{max-width:100%;border:1px solid #eee;margin:.5em 0}
.note{font-size:12px;color:#666;margin:.2em 0}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #eee}
"""

_JS = """
const media=document.getElementById('media');const cur=document.getElementById('cursor');
const tl=document.getElementById('timeline');const pps=%s;const x0=%s;
if(media){media.addEventListener('timeupdate',()=>{const x=x0+media.currentTime*pps;
cur.setAttribute('x1',x);cur.setAttribute('x2',x);});
tl.addEventListener('click',e=>{const r=tl.getBoundingClientRect();
media.currentTime=Math.max(0,(e.clientX-r.left-x0)/pps);});}
"""


def write_report(
    stimulus: str,
    predictions: np.ndarray,
    trs: pd.DataFrame | None,
    events: pd.DataFrame | None,
    plot_paths: Sequence[Path],
    out_html: Path,
    media_path: Path | None = None,
    *,
    n_brain_maps: int = 12,
    max_frames: int = 40,
    roi_top: pd.DataFrame | None = None,
) -> Path:
    """Write the stimulus-aligned HTML report.

    Parameters
    ----------
    stimulus
        Stimulus name (title).
    predictions
        ``[n_trs, 20484]``.
    trs
        TR table with ``tr_start_s`` (kept TRs, or all TRs with ``kept``).
    events
        events.tsv table (``type``, ``start``, ``duration``, ``text``); ``Word`` rows
        are drawn on the timeline.
    plot_paths
        PNG files to inline below the timeline (e.g. from ``plot_brain_maps``);
        other files are listed by name.
    media_path
        Stimulus video/audio: frames on the timeline (video) and an embedded player.
    n_brain_maps, max_frames
        Caps on brain thumbnails and video frames drawn on the timeline.
    roi_top
        Optional top-k ROI table (``roi_top.tsv``) shown under the timeline.

    Returns
    -------
    Path
        ``out_html``.
    """
    from tribe_core.products.plots import color_limits

    preds = as_predictions(predictions)
    trs_kept = align_trs(trs, preds.shape[0])
    tr_times = trs_kept["tr_start_s"].to_numpy(dtype=float)
    words = _words(events)
    ends = [tr_times[-1] + 1.0]
    if len(words):
        ends.append(float((words["start"] + words["duration"]).max()))
    duration_s = max(ends)
    px_per_s = float(np.clip(1600.0 / max(duration_s, 1.0), 8.0, 60.0))
    out_html = Path(out_html)

    media = Path(media_path) if media_path else None
    frames: list[tuple[float, str]] = []
    if media is not None and media.suffix.lower() in _VIDEO_SUFFIXES and media.exists():
        step = max(_THUMB_W / px_per_s, duration_s / max_frames)
        for t in np.arange(0.0, duration_s, step):
            jpeg = video_frame_jpeg(media, float(t))
            if jpeg:
                frames.append((float(t), _b64(jpeg, "image/jpeg")))

    vmin, vmax = color_limits(preds)
    picks = _non_overlapping(tr_times, (_BRAIN_W + 4) / px_per_s)
    if len(picks) > n_brain_maps:
        picks = [picks[i] for i in np.linspace(0, len(picks) - 1, n_brain_maps).astype(int)]
    brains = [
        (
            float(tr_times[i]),
            _b64(_brain_thumbnail(preds[i], vmin, vmax, f"{tr_times[i]:.0f} s"), "image/png"),
        )
        for i in picks
    ]
    svg = _timeline_svg(duration_s, px_per_s, frames, words, brains, preds.mean(axis=1), tr_times)

    player = ""
    suffix = media.suffix.lower() if media is not None else ""
    if media is not None and media.is_file() and suffix in _VIDEO_SUFFIXES | _AUDIO_SUFFIXES:
        tag, uri, note = embedded_media(media, duration_s)
        if uri is not None:
            player = f'<{tag} id="media" src="{uri}" controls style="max-width:480px"></{tag}>'
        player += f"<p class='note'>{html.escape(note)}</p>"

    plots_html = []
    for p in plot_paths:
        p = Path(p)
        if p.suffix.lower() == ".png" and p.exists():
            uri = _b64(p.read_bytes(), "image/png")
            plots_html.append(
                f"<figure><img class='plot' src='{uri}'><figcaption>{html.escape(p.name)}"
                "</figcaption></figure>"
            )
        else:
            plots_html.append(f"<p>{html.escape(p.name)}</p>")

    summary = {
        "TRs": int(preds.shape[0]),
        "first TR onset (s)": round(float(tr_times[0]), 3),
        "last TR onset (s)": round(float(tr_times[-1]), 3),
        "words": int(len(words)),
        "colour scale (brain thumbnails)": f"{vmin:.3g} to {vmax:.3g}",
    }
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in summary.items()
    )
    title = html.escape(f"tribeflow report: {stimulus}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_CSS}</style></head><body>
<h1>{title}</h1>
<p>Predicted fMRI responses (TRIBE v2, fsaverage5, average subject). Brain maps are placed
at their TR onset; predictions are shifted back by the model's hemodynamic offset, so a
map lines up with the stimulus that evoked it.</p>
<table>{rows}</table>
{player}
<h2>Timeline</h2>
<div class="scroll">{svg}</div>
{_roi_table_html(roi_top)}
<h2>Brain maps</h2>
{"".join(plots_html)}
<script>{_JS % (json.dumps(px_per_s), _X0)}</script>
</body></html>
"""
    write_text_atomic(out_html, page)
    return out_html

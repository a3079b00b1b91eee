"""The brain movie's H.264 encoding: x264 presets side by side, on real frames (CPU).

``python benchmarks/movie_encoding.py --trs 600``

The movie plays in stimulus time at a standard 25 fps: ffmpeg repeats each TR's
frame ``tr_s * 25`` times, so an hour at TR 1 s is 90,000 encoded frames for 3,600
drawn ones. This draws ``--distinct`` frames with the raster engine (one process,
the workflow's figure and panels; smooth random maps), cycles them over ``--trs``
TRs, and encodes the same frames with each ``--presets`` entry through
:func:`tribe_core.products.plots._write_mp4` (the workflow's own command), in one
run: wall time, its ratio to the first entry, MB, and the worst PSNR of the drawn
frames after decoding (each TR's middle frame against the frame drawn for it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tribe_core.products import plots  # noqa: E402

PRESETS = {
    "medium": (),  # x264's default preset (the movie's before veryfast)
    "veryfast": ("-preset", "veryfast"),
    "superfast": ("-preset", "superfast"),
    "ultrafast": ("-preset", "ultrafast"),
}


def smooth_maps(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 20484]`` float32 maps, smooth over vertex index (surface-like patches)."""
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((n, 20484 // 64 + 2)).astype(np.float32)
    x = np.linspace(0, raw.shape[1] - 1, 20484)
    return np.stack([np.interp(x, np.arange(raw.shape[1]), r) for r in raw]).astype(np.float32)


def decoded(path: Path, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trs", type=int, default=600)
    parser.add_argument("--distinct", type=int, default=24)
    parser.add_argument("--tr-s", type=float, default=1.0)
    parser.add_argument("--presets", default="medium,veryfast,superfast,ultrafast")
    args = parser.parse_args()
    maps = smooth_maps(args.distinct)
    vmin, vmax = plots.color_limits(maps, symmetric=True)
    panels = plots._panels(("lateral", "medial"), plots.HEMIS)
    t0 = time.perf_counter()
    movie = plots._RasterMovie(
        maps[0], "0.0 s", panels, cmap="cold_hot", vmin=vmin, vmax=vmax, threshold=None,
        scale=0.8,
    )  # fmt: skip
    frames = [movie.frame(m, f"{k:.1f} s") for k, m in enumerate(maps)]
    draw_s = (time.perf_counter() - t0) / len(frames)
    movie.close()
    h, w = frames[0].shape[:2]
    per_tr = round(args.tr_s * 25)
    print(f"{len(frames)} distinct frames {w}x{h}, {draw_s * 1000:.0f} ms each to draw; "
          f"{args.trs} TRs of {args.tr_s} s -> {args.trs * per_tr} frames at 25 fps")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets.split(","):
            out = Path(tmp) / f"{name}.mp4"
            seq = (frames[k % len(frames)] for k in range(args.trs))
            t0 = time.perf_counter()
            plots._write_mp4(seq, out, args.tr_s, 25, PRESETS[name])
            wall = time.perf_counter() - t0
            video = decoded(out, (h, w))
            mids = range(per_tr // 2, min(len(video), args.trs * per_tr), per_tr)
            worst = min(psnr(video[i], frames[(i // per_tr) % len(frames)]) for i in mids)
            rows.append((name, wall, out.stat().st_size / 2**20, worst, len(video)))
    base = rows[0][1]
    print(f"{'x264':<12}{'wall s':>9}{'vs first':>10}{'MB':>8}{'min PSNR dB':>13}{'frames':>8}")
    for name, wall, mb, worst, n in rows:
        print(f"{name:<12}{wall:>9.2f}{base / wall:>9.2f}x{mb:>8.2f}{worst:>13.1f}{n:>8}")


if __name__ == "__main__":
    main()

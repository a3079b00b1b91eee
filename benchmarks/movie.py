"""Brain movie: frames drawn by one process vs several, side by side in one run.

``python benchmarks/movie.py --trs 120 --workers 4`` writes the same random
predictions as an MP4 with 1 and with ``--workers`` drawing processes and
prints seconds, frames per second and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from tribe_core.products import plots

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trs", type=int, default=120)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    rows = np.random.default_rng(0).standard_normal((args.trs, 20484)).astype(np.float32)
    plots.make_movie(rows[:2], Path(tempfile.gettempdir()) / "tribe-warm.mp4")  # meshes cached
    timings = {}
    with tempfile.TemporaryDirectory(prefix="tribe-movie-") as tmp:
        for workers in (1, args.workers):
            start = time.perf_counter()
            plots.make_movie(rows, Path(tmp) / f"w{workers}.mp4", workers=workers)
            took = timings[workers] = time.perf_counter() - start
            print(f"workers {workers:2d}: {took:7.2f} s ({args.trs / took:6.1f} frames/s)")
    print(f"speed-up x{timings[1] / timings[args.workers]:.2f} with {args.workers} workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())

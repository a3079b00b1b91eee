"""NIfTI writer: one thread vs several, side by side in one run.

``python benchmarks/nifti.py --trs 600 --threads 4`` writes the same random
predictions as a .nii.gz with 1 thread and with ``--threads`` threads (ribbon
volumes built and gzip-compressed in blocks, one gzip member per block) and
prints seconds, TRs per second and the ratio; the two images are checked equal.
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
    import nibabel as nib

    from tribe_core.products import volumes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trs", type=int, default=600)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--smoothing-fwhm-mm", type=float, default=None)
    args = parser.parse_args(argv)
    rows = np.random.default_rng(0).standard_normal((args.trs, 20484)).astype(np.float32)
    volumes.ribbon_map()  # the cached voxel map, outside the timings
    timings = {}
    with tempfile.TemporaryDirectory(prefix="tribe-nifti-") as tmp:
        for threads in (1, args.threads):
            path = Path(tmp) / f"t{threads}.nii.gz"
            start = time.perf_counter()
            volumes.write_nifti(
                rows, path, smoothing_fwhm_mm=args.smoothing_fwhm_mm, threads=threads
            )
            timings[threads] = time.perf_counter() - start
            mib = path.stat().st_size / 2**20
            rate = args.trs / timings[threads]
            took = timings[threads]
            print(f"threads {threads:2d}: {took:7.2f} s ({rate:6.1f} TRs/s, {mib:.0f} MiB)")
        a = np.asarray(nib.load(Path(tmp) / "t1.nii.gz").dataobj[..., -1])
        b = np.asarray(nib.load(Path(tmp) / f"t{args.threads}.nii.gz").dataobj[..., -1])
        assert np.array_equal(a, b), "the two images differ"
    print(f"speed-up x{timings[1] / timings[args.threads]:.2f} with {args.threads} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())

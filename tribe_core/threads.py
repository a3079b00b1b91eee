"""CPU thread limits for a stage, so parallel jobs do not oversubscribe cores."""

from __future__ import annotations

import os


def limit_threads(n_threads: int) -> None:
    """Limit torch and BLAS threads to ``n_threads`` (the rule's ``threads:``)."""
    n = max(1, int(n_threads))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)

"""One GPU per job: bind a process to its own device before CUDA starts.

Snakemake's ``--resources gpu=N`` only counts GPU jobs (at most ``N`` at
once); it does not say which device a job should use. :func:`bind_gpu` picks
one and sets ``CUDA_VISIBLE_DEVICES`` so that ``cuda`` / ``cuda:0`` in the
job is that device:

- a scheduler that already set ``CUDA_VISIBLE_DEVICES`` (SLURM with
  ``--gpus``) wins: the variable is kept as it is;
- an explicit ``slot`` picks GPU ``slot % n_gpus``;
- otherwise the job takes the first free GPU by an exclusive ``fcntl.flock``
  on one lock file per GPU in a temp folder, and holds it until the process
  exits (the kernel drops the lock even when the job crashes, so no stale
  lock survives a killed job).

Several jobs may share one GPU (``jobs_per_gpu`` > 1, config key
``gpu_jobs_per_device``, with ``--resources gpu=N*jobs_per_gpu``): a GPU then
has that many lock files (slots), filled across GPUs first, so the feature
stages of one stimulus (video, text, audio: about 44 GiB together at full
size) run side by side instead of waiting for each other.

It must run before torch initialises CUDA (any ``torch.cuda`` call); merely
importing torch is fine.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from tribe_core.errors import TribeConfigError

log = logging.getLogger(__name__)

ENV_LOCK_DIR = "TRIBEFLOW_GPU_LOCK_DIR"
ENV_N_GPUS = "TRIBEFLOW_N_GPUS"
_HELD: dict[int, IO[bytes]] = {}  # slot -> open lock file, held for the process's life


def default_lock_dir() -> Path:
    """``$TRIBEFLOW_GPU_LOCK_DIR``, else ``<tmp>/tribeflow-gpu-locks-<uid>``."""
    env = os.environ.get(ENV_LOCK_DIR)
    return Path(env) if env else Path(tempfile.gettempdir()) / f"tribeflow-gpu-locks-{os.getuid()}"


def count_gpus() -> int:
    """Number of NVIDIA GPUs of this host, found without initialising CUDA.

    ``$TRIBEFLOW_N_GPUS`` if set, else the entries of
    ``/proc/driver/nvidia/gpus``, else ``nvidia-smi -L``; 0 when none.
    (``torch.cuda.device_count()`` is avoided: torch caches its answer, which
    would go stale once ``CUDA_VISIBLE_DEVICES`` is set.)
    """
    env = os.environ.get(ENV_N_GPUS)
    if env:
        return int(env)
    proc_dir = Path("/proc/driver/nvidia/gpus")
    if proc_dir.is_dir():
        return sum(1 for _ in proc_dir.iterdir())
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    out = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def slot_lock_name(gpu: int, share: int) -> str:
    """Lock file of share ``share`` of GPU ``gpu`` (share 0 keeps the one-job name)."""
    return f"gpu{gpu}.lock" if share == 0 else f"gpu{gpu}.{share}.lock"


def acquire_gpu_slot(
    n_gpus: int,
    lock_dir: str | Path | None = None,
    timeout_s: float | None = None,
    jobs_per_gpu: int = 1,
) -> int:
    """Lock the first free slot of GPUs ``0 .. n_gpus - 1``; return the GPU index.

    Each GPU has ``jobs_per_gpu`` slots; slots are tried share by share
    (every GPU's first slot, then every GPU's second...), so jobs spread over
    the GPUs before any two share one. The slot is held for this process's
    life. Waits (polling every 0.2 s) while every slot is held by another
    process; raises :class:`TribeConfigError` after ``timeout_s`` (``None``:
    wait forever). A GPU this process already holds is returned again.
    """
    if n_gpus < 1:
        raise ValueError(f"n_gpus must be >= 1, got {n_gpus}")
    if jobs_per_gpu < 1:
        raise ValueError(f"jobs_per_gpu must be >= 1, got {jobs_per_gpu}")
    if _HELD:
        return next(iter(_HELD))
    folder = Path(lock_dir) if lock_dir else default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waiting = False
    while True:
        for share in range(jobs_per_gpu):
            for gpu in range(n_gpus):
                path = folder / slot_lock_name(gpu, share)
                handle = open(path, "ab")  # noqa: SIM115 (held on purpose)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                _HELD[gpu] = handle
                return gpu
        if not waiting:
            waiting = True
            log.info(
                "all %d GPU slots in %s are held; waiting for a free one",
                n_gpus * jobs_per_gpu,
                folder,
            )
        if deadline is not None and time.monotonic() > deadline:
            raise TribeConfigError(
                f"all {n_gpus * jobs_per_gpu} GPU slots ({n_gpus} GPUs x {jobs_per_gpu} "
                f"jobs) in {folder} are held by other jobs after {timeout_s} s; run "
                "Snakemake with --resources gpu=N (N <= GPUs x gpu_jobs_per_device)"
            )
        time.sleep(0.2)


def bind_gpu(
    slot: int | None,
    n_gpus: int | None = None,
    *,
    lock_dir: str | Path | None = None,
    timeout_s: float | None = None,
    jobs_per_gpu: int = 1,
) -> str:
    """Make this process see one GPU; return ``CUDA_VISIBLE_DEVICES`` ("" without GPUs).

    Parameters
    ----------
    slot
        GPU index to use (taken modulo ``n_gpus``); ``None`` picks a free one
        by file lock (:func:`acquire_gpu_slot`).
    n_gpus
        GPUs of the host; ``None`` counts them (:func:`count_gpus`).
    lock_dir, timeout_s, jobs_per_gpu
        Passed to :func:`acquire_gpu_slot`.
    """
    preset = os.environ.get("CUDA_VISIBLE_DEVICES")
    if preset is not None:
        log.info("CUDA_VISIBLE_DEVICES=%s set by the scheduler; kept", preset)
        return preset
    n = count_gpus() if n_gpus is None else n_gpus
    if n < 1:
        log.info("no GPU found; nothing to bind")
        return ""
    chosen = (
        slot % n if slot is not None else acquire_gpu_slot(n, lock_dir, timeout_s, jobs_per_gpu)
    )
    os.environ["CUDA_VISIBLE_DEVICES"] = str(chosen)
    log.info("bound to GPU %d of %d (CUDA_VISIBLE_DEVICES=%d)", chosen, n, chosen)
    return str(chosen)


def bind_device(device: str, jobs_per_gpu: int = 1) -> str:
    """Bind a job asking for ``cuda`` / ``cuda:0`` to a GPU slot; return the device to use.

    ``jobs_per_gpu`` jobs may hold one GPU at once (:func:`acquire_gpu_slot`).
    CPU devices and explicit other indices (``cuda:1``, the user's choice)
    are returned unchanged and bind nothing.
    """
    if device in ("cuda", "cuda:0"):
        bind_gpu(None, jobs_per_gpu=jobs_per_gpu)
        return "cuda"
    return device

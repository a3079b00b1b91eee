"""One response map per stimulus: its predictions averaged over time or a TR window.

``results/{stimulus}/insilico/response.npz`` holds ``response [20484]`` float32 (the
mean over kept TRs), ``n_trs`` (TRs averaged) and ``window_trs`` (``[start, stop)`` TR
indices after onset, ``[-1, -1]`` for all TRs). TR ``i`` is the prediction for the BOLD
sample ``i * tr_s + hemodynamic_offset_s`` after the stimulus onset (the TR table of
``predictions.zarr``), so a window is in stimulus TRs, the offset already applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import atomic_path
from tribe_core.products import N_VERTICES


def window_mean(
    predictions: np.ndarray,
    tr_index: np.ndarray,
    window_trs: Sequence[int] | None = None,
    *,
    stimulus: str | None = None,
) -> tuple[np.ndarray, int]:
    """Mean of the kept TRs of a stimulus inside a window.

    Parameters
    ----------
    predictions
        ``[n_kept_trs, 20484]``.
    tr_index
        ``[n_kept_trs]`` TR index (from the onset) of each prediction row.
    window_trs
        ``(start, stop)``: TRs ``start <= i < stop``; ``None`` for every kept TR.

    Returns
    -------
    response, n_trs
        ``[20484]`` float32 mean and the number of TRs averaged.

    Raises
    ------
    TribeInputError
        The window is empty or holds no kept TR of this stimulus.
    """
    preds = np.asarray(predictions)
    if preds.ndim != 2 or preds.shape[1] != N_VERTICES or preds.shape[0] != len(tr_index):
        raise TribeInputError(
            f"predictions must be [n_kept_trs, {N_VERTICES}] with one TR index per row; got "
            f"{preds.shape} and {len(tr_index)} indices",
            stimulus=stimulus,
        )
    rows = np.ones(len(tr_index), dtype=bool)
    if window_trs is not None:
        start, stop = (int(v) for v in window_trs)
        if not 0 <= start < stop:
            raise TribeInputError(
                f"TR window must be [start, stop) with 0 <= start < stop, got {list(window_trs)}"
            )
        rows = (np.asarray(tr_index) >= start) & (np.asarray(tr_index) < stop)
    if not rows.any():
        kept = f"TRs {int(np.min(tr_index))}..{int(np.max(tr_index))}" if len(tr_index) else "none"
        raise TribeInputError(
            f"no kept TR in the window {list(window_trs or [])} (kept: {kept}); shorten "
            "insilico.window_trs or drop this stimulus",
            stimulus=stimulus,
        )
    mean = preds[rows].astype(np.float64).mean(axis=0).astype(np.float32)
    return mean, int(rows.sum())


def write_response(
    path: str | Path, response: np.ndarray, n_trs: int, window_trs: Sequence[int] | None
) -> Path:
    """Write ``response.npz`` atomically (see the module docstring)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                response=np.asarray(response, dtype=np.float32),
                n_trs=np.int64(n_trs),
                window_trs=np.asarray(window_trs if window_trs else (-1, -1), dtype=np.int64),
            )
    return path


def read_responses(paths: Mapping[str, str | Path]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Stack the responses of several stimuli.

    Parameters
    ----------
    paths
        Stimulus -> ``response.npz``.

    Returns
    -------
    names, responses, n_trs
        Stimulus names (in the order given), ``[n_stimuli, 20484]`` float32 and
        ``[n_stimuli]`` TRs averaged per stimulus.
    """
    names, rows, counts = [], [], []
    for name, path in paths.items():
        try:
            with np.load(path, allow_pickle=False) as data:
                response, n_trs = np.asarray(data["response"]), int(data["n_trs"])
        except (OSError, KeyError, ValueError) as exc:
            raise TribeInputError(
                f"unreadable response file ({exc})", path=path, stimulus=name
            ) from exc
        if response.shape != (N_VERTICES,):
            raise TribeInputError(
                f"response has shape {response.shape}, expected [{N_VERTICES}]",
                path=path,
                stimulus=name,
            )
        names.append(name)
        rows.append(response)
        counts.append(n_trs)
    if not rows:
        raise TribeInputError("no stimulus response to stack")
    return names, np.stack(rows).astype(np.float32), np.asarray(counts, dtype=np.int64)

"""Analyses on predictions: modality contributions, evaluation against real fMRI, resampling.

- **Contributions** (ablation): the map of a modality is the full prediction minus
  the prediction made without that modality (its features absent, zero-filled by
  the encoder as the reference does). Without the only modality a stimulus has,
  that is the prediction with every modality zero-filled (the encoder's baseline).
  A modality the stimulus lacks is already zero-filled in the full prediction: it
  gets no map.
- **Evaluation** against a real fMRI run on fsaverage5 (or a finer fsaverage,
  decimated by nesting; or a NIfTI projected with ``nilearn.surface.vol_to_surf``):
  per-vertex Pearson r and MSE over time, and top-k TR retrieval (is the real map of
  TR t among the k real maps most correlated, across vertices, with the predicted map
  of TR t?).
- **Resampling** to another fsaverage resolution by nearest neighbour on the sphere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import atomic_path
from tribe_core.products import N_VERTICES, N_VERTICES_PER_HEMI
from tribe_core.products.meshes import FSAVERAGE_SIZES, as_predictions, load_fsaverage5

# --------------------------------------------------------------------------- contributions


def modality_contributions(
    full: np.ndarray, ablated: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Contribution of each modality: ``full - ablated[modality]``.

    Parameters
    ----------
    full
        ``[n_trs, 20484]`` prediction with every modality.
    ablated
        Modality -> ``[n_trs, 20484]`` prediction made without that modality.

    Returns
    -------
    dict
        Modality -> ``[n_trs, 20484]`` float32 contribution.
    """
    full = as_predictions(full, what="full prediction")
    out = {}
    for modality, pred in ablated.items():
        pred = as_predictions(pred, what=f"prediction without {modality}")
        if pred.shape != full.shape:
            raise TribeInputError(
                f"prediction without {modality} has shape {pred.shape}, full prediction "
                f"{full.shape}: both must come from the same TRs"
            )
        out[modality] = full - pred
    return out


def ablation_contributions(
    predict: Callable[[dict[str, np.ndarray | None]], np.ndarray],
    features: Mapping[str, np.ndarray | None],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ``predict`` with all features, then once per present modality with it removed.

    Parameters
    ----------
    predict
        Features dict -> ``[n_trs, 20484]``. Removing the only present modality
        calls it with every modality ``None``, which must give the all-zero-filled
        prediction, e.g. ``lambda f: predict_stimulus(encoder, f, events,
        allow_all_absent=True).predictions``.
    features
        Modality -> ``[L, D, T]`` features, or ``None`` when absent (no
        contribution is computed for it).

    Returns
    -------
    full, contributions
        The full prediction and :func:`modality_contributions` of it.
    """
    full = predict(dict(features))
    ablated = {
        m: predict({**features, m: None}) for m, value in features.items() if value is not None
    }
    return as_predictions(full), modality_contributions(full, ablated)


def contribution_table(contributions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per-vertex time-mean contribution and mean absolute contribution per modality.

    Returns
    -------
    pandas.DataFrame
        20,484 rows: ``vertex``, ``hemisphere``, then ``<modality>_mean`` and
        ``<modality>_abs`` per modality, and ``dominant`` (modality with the largest
        mean absolute contribution).
    """
    frame = pd.DataFrame(
        {
            "vertex": np.arange(N_VERTICES),
            "hemisphere": np.where(np.arange(N_VERTICES) < N_VERTICES_PER_HEMI, "left", "right"),
        }
    )
    abs_means = {}
    for modality, contrib in contributions.items():
        contrib = as_predictions(contrib, what=f"{modality} contribution")
        frame[f"{modality}_mean"] = contrib.mean(axis=0)
        abs_means[modality] = np.abs(contrib).mean(axis=0)
        frame[f"{modality}_abs"] = abs_means[modality]
    if abs_means:
        names = list(abs_means)
        frame["dominant"] = np.array(names)[np.argmax(np.stack(list(abs_means.values())), axis=0)]
    return frame


def write_contribution_maps(
    contributions: Mapping[str, np.ndarray], out_dir: Path, *, plot: bool = True
) -> list[Path]:
    """Write ``contributions.tsv`` (:func:`contribution_table`), one GIFTI pair of
    time-mean maps per modality (``contribution_<modality>.{lh,rh}.func.gii``) and, with
    ``plot``, ``contributions.png`` (one row per modality, shared colour scale)."""
    from tribe_core.products.rois import write_table
    from tribe_core.products.volumes import write_gifti

    if not contributions:
        raise TribeInputError("no modality contribution to write (was every modality absent?)")
    out_dir = Path(out_dir)
    written = write_table(contribution_table(contributions), out_dir / "contributions.tsv")
    means = {m: as_predictions(c).mean(axis=0) for m, c in contributions.items()}
    for modality, mean in means.items():
        written += write_gifti(mean[None], out_dir, name=f"contribution_{modality}")
    if plot:
        from tribe_core.products.plots import render_maps, save_figure

        fig = render_maps(
            np.stack(list(means.values())),
            list(means),
            title="Modality contributions (prediction minus prediction without it, time mean)",
            colorbar_label="contribution",
        )
        written.append(save_figure(fig, out_dir / "contributions.png"))
    return written


# --------------------------------------------------------------------------- real fMRI


def _fsaverage5_from_finer(data: np.ndarray, source: Path) -> np.ndarray:
    """``[n_trs, 2 * n]`` on a nested fsaverage mesh -> ``[n_trs, 20484]`` (decimation)."""
    n = data.shape[1] // 2
    if data.shape[1] % 2 or n not in FSAVERAGE_SIZES.values() or n < N_VERTICES_PER_HEMI:
        raise TribeInputError(
            f"real fMRI has {data.shape[1]} vertices; expected 2 x 10242 (fsaverage5) or "
            "2 x 40962 / 2 x 163842 (fsaverage6/7), left hemisphere first",
            path=source,
        )
    return np.concatenate(
        [data[:, :N_VERTICES_PER_HEMI], data[:, n : n + N_VERTICES_PER_HEMI]], axis=1
    )


def _orient(data: np.ndarray, source: Path) -> np.ndarray:
    """Put time first: ``[n_trs, n_vertices]``."""
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2:
        raise TribeInputError(f"expected a 2-D array, got shape {data.shape}", path=source)
    if data.shape[0] in (2 * n for n in FSAVERAGE_SIZES.values()) and data.shape[1] not in (
        2 * n for n in FSAVERAGE_SIZES.values()
    ):
        data = data.T
    return data


def _hemi_pair(path: Path) -> tuple[Path, Path]:
    name = path.name
    for left, right in (("lh.", "rh."), ("hemi-L", "hemi-R"), (".L.", ".R."), ("_lh", "_rh")):
        if left in name:
            return path, path.with_name(name.replace(left, right, 1))
        if right in name:
            return path.with_name(name.replace(right, left, 1)), path
    raise TribeInputError(
        "cannot tell the hemisphere of this GIFTI; name the files with lh./rh., hemi-L/hemi-R "
        "or pass both as a (left, right) pair",
        path=path,
    )


def _load_gifti_series(path: Path) -> np.ndarray:
    import nibabel as nib

    if not path.exists():
        raise TribeInputError("GIFTI file not found (the other hemisphere is needed)", path=path)
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises XML, image-file and OS errors alike
        raise TribeInputError(f"unreadable GIFTI: {type(exc).__name__}: {exc}", path=path) from exc
    if not isinstance(img, nib.gifti.GiftiImage):
        raise TribeInputError(f"not a GIFTI image ({type(img).__name__})", path=path)
    return np.stack([np.asarray(d.data, dtype=np.float32).ravel() for d in img.darrays])


def load_real_fmri(source: Path | str | tuple[Path | str, Path | str]) -> np.ndarray:
    """Load a real fMRI run as ``[n_trs, 20484]`` float32 on fsaverage5.

    Parameters
    ----------
    source
        ``.npy`` (``[n_trs, n_vertices]`` or transposed), a GIFTI time series of one
        hemisphere (its ``lh``/``rh`` twin is found by name) or a ``(left, right)``
        pair, or a NIfTI (``.nii``/``.nii.gz``) in MNI space projected on fsaverage5
        with ``nilearn.surface.vol_to_surf`` (between white and pial surfaces).
        Data on fsaverage6/7 are decimated to fsaverage5 (nested meshes).
    """
    if isinstance(source, tuple):
        left, right = (Path(p) for p in source)
        data = np.concatenate([_load_gifti_series(left), _load_gifti_series(right)], axis=1)
        return as_predictions(_fsaverage5_from_finer(data, left), what="real fMRI")
    path = Path(source)
    if not path.exists():
        raise TribeInputError("real fMRI file not found", path=path)
    name = path.name.lower()
    if name.endswith(".npy"):
        data = _orient(np.load(path, allow_pickle=False), path)
    elif name.endswith(".gii"):
        return load_real_fmri(_hemi_pair(path))
    elif name.endswith((".nii", ".nii.gz")):
        data = _nifti_to_fsaverage5(path)
    else:
        raise TribeInputError(
            "unsupported real fMRI format; use .npy, .func.gii (per hemisphere) or .nii(.gz)",
            path=path,
        )
    return as_predictions(_fsaverage5_from_finer(data.astype(np.float32), path), what="real fMRI")


def _nifti_to_fsaverage5(path: Path) -> np.ndarray:
    from nilearn import surface

    pial, white = load_fsaverage5("pial"), load_fsaverage5("white_matter")
    parts = []
    for p, w in zip(pial, white, strict=True):
        tex = surface.vol_to_surf(
            str(path), (p.coordinates, p.faces), inner_mesh=(w.coordinates, w.faces)
        )
        parts.append(np.asarray(tex, dtype=np.float32).reshape(N_VERTICES_PER_HEMI, -1))
    return np.concatenate(parts, axis=0).T


def pearson_r_per_vertex(pred: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Pearson r over time per vertex ``[V]`` (NaN where either series is constant)."""
    p = pred.astype(np.float64) - pred.mean(axis=0)
    r = real.astype(np.float64) - real.mean(axis=0)
    denom = np.sqrt((p**2).sum(axis=0) * (r**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (p * r).sum(axis=0) / denom, np.nan)


def tr_retrieval_ranks(pred: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Rank (0 = best) of the true TR among all real TRs for each predicted map ``[n_trs]``.

    Maps are compared by their spatial Pearson correlation across vertices.
    """
    p = pred.astype(np.float64) - pred.mean(axis=1, keepdims=True)
    r = real.astype(np.float64) - real.mean(axis=1, keepdims=True)
    p /= np.linalg.norm(p, axis=1, keepdims=True) + 1e-12
    r /= np.linalg.norm(r, axis=1, keepdims=True) + 1e-12
    sim = p @ r.T
    true = np.diag(sim)
    return (sim > true[:, None]).sum(axis=1)


def evaluate_predictions(
    predictions: np.ndarray, real: np.ndarray, *, top_k: Sequence[int] = (1, 5, 10)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare predictions with a real fMRI run of the same TRs.

    Parameters
    ----------
    predictions, real
        ``[n_trs, 20484]`` each, row ``t`` of both at the same time.
    top_k
        Retrieval cut-offs.

    Returns
    -------
    per_vertex
        20,484 rows: ``vertex``, ``hemisphere``, ``pearson_r``, ``mse``.
    summary
        One row per metric (``metric``, ``value``, ``chance``): mean/median r, mean
        MSE, and ``top{k}_retrieval`` accuracies with their chance level ``k / n_trs``.
    """
    pred = as_predictions(predictions)
    real = as_predictions(real, what="real fMRI")
    if pred.shape != real.shape:
        raise TribeInputError(
            f"predictions {pred.shape} and real fMRI {real.shape} must cover the same TRs; "
            "crop the real run to the kept TRs of the prediction (and mind the 5 s offset)"
        )
    r = pearson_r_per_vertex(pred, real)
    mse = ((pred.astype(np.float64) - real) ** 2).mean(axis=0)
    per_vertex = pd.DataFrame(
        {
            "vertex": np.arange(N_VERTICES),
            "hemisphere": np.where(np.arange(N_VERTICES) < N_VERTICES_PER_HEMI, "left", "right"),
            "pearson_r": r,
            "mse": mse,
        }
    )
    n = pred.shape[0]
    rows = [
        ("mean_pearson_r", float(np.nanmean(r)), 0.0),
        ("median_pearson_r", float(np.nanmedian(r)), 0.0),
        ("mean_mse", float(mse.mean()), np.nan),
    ]
    ranks = tr_retrieval_ranks(pred, real)
    for k in top_k:
        rows.append((f"top{k}_retrieval", float((ranks < k).mean()), min(k / n, 1.0)))
    summary = pd.DataFrame(rows, columns=["metric", "value", "chance"])
    return per_vertex, summary


def write_evaluation(
    predictions: np.ndarray,
    real: np.ndarray | Path | str,
    out_dir: Path,
    *,
    top_k: Sequence[int] = (1, 5, 10),
    plot: bool = True,
) -> list[Path]:
    """Write ``evaluation_vertices.tsv``, ``evaluation_summary.tsv``, the r map as GIFTI
    (``evaluation_r.{lh,rh}.func.gii``) and, with ``plot``, ``evaluation_r.png``."""
    from tribe_core.products.rois import write_table
    from tribe_core.products.volumes import write_gifti

    real_arr = real if isinstance(real, np.ndarray) else load_real_fmri(real)
    per_vertex, summary = evaluate_predictions(predictions, real_arr, top_k=top_k)
    out_dir = Path(out_dir)
    written = write_table(per_vertex, out_dir / "evaluation_vertices.tsv")
    written += write_table(summary, out_dir / "evaluation_summary.tsv")
    r_map = per_vertex["pearson_r"].to_numpy(dtype=np.float32)
    written += write_gifti(np.nan_to_num(r_map)[None], out_dir, name="evaluation_r")
    if plot:
        from tribe_core.products.plots import render_maps, save_figure

        fig = render_maps(
            np.nan_to_num(r_map)[None],
            ["Pearson r"],
            title="Prediction vs real fMRI (per-vertex Pearson r)",
            colorbar_label="r",
        )
        written.append(save_figure(fig, out_dir / "evaluation_r.png"))
    return written


# --------------------------------------------------------------------------- resampling


def _sphere_coords(mesh: str) -> tuple[np.ndarray, np.ndarray]:
    if mesh not in FSAVERAGE_SIZES:
        raise TribeInputError(f"unknown mesh {mesh!r}; expected one of {list(FSAVERAGE_SIZES)}")
    n = FSAVERAGE_SIZES[mesh]
    left, right = load_fsaverage5("sphere")
    if n <= N_VERTICES_PER_HEMI:
        # Icosahedral nesting: a coarser mesh is the first n vertices of fsaverage5.
        return left.coordinates[:n], right.coordinates[:n]
    try:
        from nilearn import datasets

        bunch = datasets.load_fsaverage(mesh)
    except Exception as exc:  # noqa: BLE001 - nilearn raises network errors of many kinds
        raise TribeInputError(
            f"{mesh} is not shipped with nilearn and could not be fetched ({exc}); pass its "
            "sphere coordinates as target_sphere=(lh_xyz, rh_xyz), e.g. from "
            "nibabel.freesurfer.read_geometry('lh.sphere')"
        ) from exc
    parts = bunch["sphere"].parts
    return np.asarray(parts["left"].coordinates), np.asarray(parts["right"].coordinates)


def resample_fsaverage5(
    values: np.ndarray,
    target: str = "fsaverage4",
    *,
    target_sphere: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Resample ``[..., 20484]`` fsaverage5 data to another fsaverage mesh (nearest on sphere).

    Parameters
    ----------
    values
        ``[..., 20484]`` (left hemisphere first).
    target
        ``fsaverage3``, ``fsaverage4`` (exact decimation, by nesting), ``fsaverage6`` or
        ``fsaverage`` (nilearn fetch, network needed) — or any mesh given by
        ``target_sphere``.
    target_sphere
        ``(lh_xyz [n, 3], rh_xyz [n, 3])`` sphere coordinates (same radius convention as
        FreeSurfer's ``?h.sphere``, 100 mm) of the target mesh.

    Returns
    -------
    numpy.ndarray
        ``[..., 2 * n_target]`` (left hemisphere first).
    """
    from scipy.spatial import cKDTree

    values = np.asarray(values)
    if values.shape[-1] != N_VERTICES:
        raise TribeInputError(f"expected [..., {N_VERTICES}] values, got {values.shape}")
    targets = target_sphere if target_sphere is not None else _sphere_coords(target)
    source = load_fsaverage5("sphere")
    parts = []
    for h, (src, dst) in enumerate(zip(source, targets, strict=True)):
        dst = np.asarray(dst, dtype=np.float64)
        src_xyz = src.coordinates / np.linalg.norm(src.coordinates, axis=1, keepdims=True)
        dst_xyz = dst / np.linalg.norm(dst, axis=1, keepdims=True)
        _, nearest = cKDTree(src_xyz).query(dst_xyz)
        parts.append(values[..., h * N_VERTICES_PER_HEMI + nearest])
    return np.concatenate(parts, axis=-1)


def write_resampled(predictions: np.ndarray, out_dir: Path, target: str = "fsaverage4") -> Path:
    """Write predictions resampled to ``target`` as ``predictions_<target>.npy``."""
    resampled = resample_fsaverage5(as_predictions(predictions), target).astype(np.float32)
    path = Path(out_dir) / f"predictions_{target}.npy"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, resampled)
    return path

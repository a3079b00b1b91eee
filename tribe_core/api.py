"""Python API for notebooks: predicted responses of a stimulus, through the workflow itself.

:func:`predict` runs the Snakemake workflow (the same rules, scripts, rerun triggers and
``results/`` folder as ``snakemake --configfile ...``) for the given file(s), up to
``results/<stem>/predictions.zarr``, and reads the store back, optionally restricted to
HCP-MMP1 areas and/or a vertex mask (as BERG's ``selection``). A second call with the
same stimulus and config finds every output up to date and runs no job
(:attr:`Prediction.jobs_run` is 0).

Example
-------
>>> from tribe_core.api import predict
>>> pred = predict("stimuli/clip.mp4", config="config/demo.yaml", selection=["V1", "L_MT"])
>>> pred.data.shape  # [n_trs, n_selected vertices]
>>> pred.times_s[:3], pred.tr_s  # TR onsets in stimulus time (s), repetition time
>>> predict("stimuli/clip.mp4", config="config/demo.yaml").jobs_run  # cached: 0
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
import yaml

from tribe_core.errors import TribeConfigError, TribeError, TribeInputError
from tribe_core.io.atomic import write_text_atomic
from tribe_core.products import N_VERTICES

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
# The Snakefile's own `configfile:`; Snakemake loads it (relative to the working
# directory) under any --configfile when it exists, so validation does the same.
BASE_CONFIG = Path("config") / "config.yaml"
API_FILE_PREFIX = ".tribeflow-api-"
_SILENCING_ARGS = frozenset({"-q", "--quiet", "-n", "--dry-run", "--dryrun"})

PathLike = str | os.PathLike[str]
Selection = str | np.ndarray | Sequence[str | np.ndarray | bool] | None


class WorkflowRunError(TribeError):
    """The workflow run behind :func:`predict` failed; the message holds its output's end."""


@dataclass(frozen=True)
class Prediction:
    """Predicted responses of one stimulus.

    Attributes
    ----------
    stimulus
        Stimulus name (the file stem, the workflow's ``{stimulus}``).
    data
        ``[n_trs, n_selected]`` float32: kept TRs in time order, selected vertices.
    times_s
        ``[n_trs]`` TR onsets in stimulus time (seconds).
    response_times_s
        ``[n_trs]`` onsets plus the hemodynamic offset: when the predicted BOLD sample
        is measured.
    tr_s
        Repetition time in seconds.
    vertices
        ``[n_selected]`` ascending indices into the 20,484 fsaverage5 vertices (left
        hemisphere first).
    path
        The ``predictions.zarr`` store the data were read from.
    trs
        The full TR table of :func:`tribe_core.segments.read_predictions` (dropped TRs
        included).
    jobs_run
        Jobs Snakemake ran in the call that returned this (all its stimuli together);
        0 when everything was already up to date.
    """

    stimulus: str
    data: np.ndarray
    times_s: np.ndarray
    response_times_s: np.ndarray
    tr_s: float
    vertices: np.ndarray
    path: Path
    trs: pd.DataFrame
    jobs_run: int = 0


@overload
def predict(
    stimuli: PathLike,
    config: PathLike | Mapping[str, Any],
    *,
    selection: Selection = None,
    workdir: PathLike | None = None,
    cores: int | None = None,
    snakemake_args: Sequence[str] = (),
) -> Prediction: ...


@overload
def predict(
    stimuli: list[PathLike] | tuple[PathLike, ...],
    config: PathLike | Mapping[str, Any],
    *,
    selection: Selection = None,
    workdir: PathLike | None = None,
    cores: int | None = None,
    snakemake_args: Sequence[str] = (),
) -> dict[str, Prediction]: ...


def predict(
    stimuli: PathLike | list[PathLike] | tuple[PathLike, ...],
    config: PathLike | Mapping[str, Any],
    *,
    selection: Selection = None,
    workdir: PathLike | None = None,
    cores: int | None = None,
    snakemake_args: Sequence[str] = (),
) -> Prediction | dict[str, Prediction]:
    """Predict the responses to stimuli by running the workflow up to ``predictions.zarr``.

    Parameters
    ----------
    stimuli
        A video, audio or ``.txt`` file, or a list of them (file stems must differ).
        Relative paths are relative to Python's current directory.
    config
        A workflow config file or a dict of the same keys (``config/README.md``); its
        ``stimuli`` is replaced by the given files. Relative paths inside it are
        relative to ``workdir``, as for ``snakemake --configfile``. Validated against
        ``config/schema/config.schema.yaml`` before anything runs.
    selection
        ``None`` (all 20,484 vertices), HCP-MMP1 names or wildcards (``"V1"`` both
        hemispheres, ``"L_V1"`` or ``"L_V1_ROI"`` left only, ``"*STS*"``; these need
        the HCP-MMP1 atlas, found as the workflow finds it: ``products.atlas_dir``, the
        atlas caches, or a download with ``products.atlas_download: true``), a boolean
        ``[20484]`` vertex mask, or a list mixing them (the union).
    workdir
        The project folder Snakemake runs in (``--directory``): ``results_dir`` and
        ``.snakemake/`` live there; made if it does not exist. Default: the current directory.
    cores
        ``--cores`` (default: all).
    snakemake_args
        Further Snakemake options, e.g. ``["--resources", "gpu=1"]`` or
        ``["--profile", "profiles/workstation"]``.

    Returns
    -------
    Prediction or dict
        One :class:`Prediction` for a single path; ``{stimulus name: Prediction}`` in the
        given order for a list.

    Raises
    ------
    TribeInputError
        A stimulus is missing, empty, of an unsupported type, or two share a stem; a
        selection names no area or a mask has the wrong shape.
    TribeConfigError
        The config is invalid, or area names were asked for without an atlas.
    WorkflowRunError
        A workflow job failed (the message ends with Snakemake's output).
    """
    single = isinstance(stimuli, str | os.PathLike)
    paths: list[PathLike] = [stimuli] if isinstance(stimuli, str | os.PathLike) else list(stimuli)
    if not paths:
        raise TribeInputError("no stimulus given; pass a file path or a list of paths")
    skipped = sorted(set(snakemake_args) & _SILENCING_ARGS)
    if skipped:
        raise TribeConfigError(
            f"snakemake_args {skipped} would skip the run or hide its progress lines, from "
            "which predict() counts the jobs run; leave them out"
        )
    root = Path(os.path.abspath(workdir if workdir is not None else Path.cwd()))
    if root.exists() and not root.is_dir():
        raise TribeConfigError(f"workdir {str(root)!r} is not a folder")
    files = list(dict.fromkeys(Path(os.path.abspath(p)) for p in paths))
    # Everything is checked before the first file is written or job started.
    user_config = _load_config(config)
    merged = _validated_config({**user_config, "stimuli": "<given files>"}, root)
    names = _checked_names(files, merged["language"])
    names_asked, _ = _split_selection(selection)
    atlas = _resolve_atlas(merged["products"], root, names_asked) if names_asked else None
    vertices = selection_vertices(selection, atlas)

    root.mkdir(parents=True, exist_ok=True)  # a new project folder, made once all is checked
    user_config["stimuli"] = _write_api_file(root, ".tsv", _sample_sheet(root, files)).name
    config_file = _write_api_file(root, ".yaml", yaml.safe_dump(user_config, sort_keys=False))
    results_dir = str(merged["results_dir"])
    targets = [f"{results_dir}/{name}/predictions.zarr" for name in names]
    jobs_run = _run_workflow(root, config_file, targets, cores, snakemake_args)
    result = {
        name: read_prediction(root / target, vertices=vertices, jobs_run=jobs_run)
        for name, target in zip(names, targets, strict=True)
    }
    return next(iter(result.values())) if single else result


def read_prediction(
    path: PathLike,
    selection: Selection = None,
    *,
    atlas_dir: PathLike | None = None,
    vertices: np.ndarray | None = None,
    jobs_run: int = 0,
) -> Prediction:
    """Read a ``predictions.zarr`` store (of the workflow or :func:`predict`) as a Prediction.

    Parameters
    ----------
    path
        ``results/<stimulus>/predictions.zarr``; the stimulus name is its folder's name.
    selection
        As in :func:`predict`; area names need ``atlas_dir``.
    atlas_dir
        Folder of ``lh/rh.HCP-MMP1.annot`` for area names.
    vertices
        Vertex indices to keep, instead of ``selection``.
    jobs_run
        Recorded in the result (see :attr:`Prediction.jobs_run`).
    """
    from tribe_core.segments import read_predictions

    store = Path(path)
    if not store.is_dir():
        raise TribeInputError("predictions store does not exist", path=store)
    if vertices is None:
        vertices = selection_vertices(selection, atlas_dir)
    with warnings.catch_warnings():
        # Snakemake marks a directory() output with a .snakemake_timestamp file, which
        # Zarr reports as a foreign object; not worth a warning in a notebook.
        warnings.filterwarnings("ignore", message=".*snakemake_timestamp")
        result = read_predictions(store)
    if result.predictions.shape[1] != N_VERTICES:
        raise TribeInputError(
            f"predictions have {result.predictions.shape[1]} vertices; expected {N_VERTICES} "
            "(fsaverage5)",
            path=store,
        )
    kept = result.trs[result.trs["kept"]]
    data = result.predictions
    if len(vertices) != N_VERTICES:
        data = data[:, vertices]
    return Prediction(
        stimulus=store.parent.name,
        data=data,
        times_s=kept["tr_start_s"].to_numpy(dtype=np.float64),
        response_times_s=kept["response_time_s"].to_numpy(dtype=np.float64),
        tr_s=result.tr_s,
        vertices=vertices,
        path=store,
        trs=result.trs,
        jobs_run=jobs_run,
    )


def selection_vertices(selection: Selection, atlas_dir: PathLike | None = None) -> np.ndarray:
    """Ascending vertex indices ``[n_selected]`` (int64) of a selection.

    Parameters
    ----------
    selection
        ``None`` (all 20,484 vertices), an HCP-MMP1 area name or wildcard (``"V1"``,
        ``"L_V1"``, ``"L_V1_ROI"``, ``"V*"``), a boolean ``[20484]`` mask, or a list
        of them (the union).
    atlas_dir
        Folder of ``lh/rh.HCP-MMP1.annot``; needed only for names.

    Raises
    ------
    TribeInputError
        A name matches no area, a mask is not boolean ``[20484]``, or nothing is selected.
    TribeConfigError
        Names were given but no atlas folder.
    """
    if selection is None:
        return np.arange(N_VERTICES, dtype=np.int64)
    names, masks = _split_selection(selection)
    mask = np.zeros(N_VERTICES, dtype=bool)
    for vertex_mask in masks:
        mask |= vertex_mask
    if names:
        from tribe_core.products.rois import selection_mask

        mask |= selection_mask(_load_atlas(atlas_dir, names), names)
    if not mask.any():
        raise TribeInputError(f"the selection {_describe(selection)} selects no vertex")
    return np.flatnonzero(mask).astype(np.int64)


def _split_selection(selection: Selection) -> tuple[list[str], list[np.ndarray]]:
    """ROI patterns (``_ROI`` suffix dropped, as in the .annot names) and boolean masks."""
    if selection is None:
        return [], []
    if isinstance(selection, str | np.ndarray):
        items: list[Any] = [selection]
    elif isinstance(selection, Sequence) and len(selection) == 0:
        raise TribeInputError("the selection is an empty list; pass None to keep every vertex")
    elif isinstance(selection, Sequence) and all(isinstance(x, bool | np.bool_) for x in selection):
        items = [np.asarray(selection, dtype=bool)]
    elif isinstance(selection, Sequence):
        items = list(selection)
    else:
        raise TribeInputError(
            f"selection must be area names, a boolean [{N_VERTICES}] mask or a list of them; "
            f"got {type(selection).__name__}"
        )
    names, masks = [], []
    for item in items:
        if isinstance(item, str):
            names.append(re.sub(r"_ROI$", "", item.strip()))
        elif isinstance(item, np.ndarray) and item.dtype == bool and item.shape == (N_VERTICES,):
            masks.append(item)
        else:
            got = (
                f"array of dtype {item.dtype} and shape {item.shape}"
                if isinstance(item, np.ndarray)
                else repr(item)[:80]
            )
            raise TribeInputError(
                f"selection items must be HCP-MMP1 names (e.g. 'V1', 'L_V1_ROI') or boolean "
                f"masks of shape [{N_VERTICES}] (fsaverage5, left hemisphere first); got {got}"
            )
    return names, masks


def _load_atlas(atlas_dir: PathLike | None, names: list[str]) -> Any:
    from tribe_core.products.atlas import load_hcp_mmp1

    if atlas_dir is None:
        raise TribeConfigError(
            f"selecting areas by name ({', '.join(map(repr, names))}) needs the HCP-MMP1 "
            "atlas: give the folder holding lh.HCP-MMP1.annot and rh.HCP-MMP1.annot "
            "(predict() takes it from products.atlas_dir or the atlas caches), or select "
            "with a boolean vertex mask"
        )
    return load_hcp_mmp1(Path(atlas_dir))


def _resolve_atlas(products: Mapping[str, Any], root: Path, names: list[str]) -> Path:
    """The atlas folder the workflow would use (config folder, caches, allowed download)."""
    from tribe_core.products.atlas_source import (
        HCP_TERMS_URL,
        AtlasSettings,
        candidate_caches,
        resolve_atlas_dir,
    )

    # The workflow resolves relative folders in its working directory, which is ``root``.
    local = {
        key: str(root / Path(str(products[key])).expanduser())
        for key in ("atlas_dir", "atlas_cache")
        if products.get(key)
    }
    settings = AtlasSettings.from_products({**products, **local})
    found = resolve_atlas_dir(settings)
    if found is None:
        caches = ", ".join(str(c) for c in candidate_caches(settings.cache_dir))
        raise TribeConfigError(
            f"selecting areas by name ({', '.join(map(repr, names))}) needs the HCP-MMP1 "
            "atlas, and none was found. Either (1) set products.atlas_dir to a folder "
            "holding lh.HCP-MMP1.annot and rh.HCP-MMP1.annot, (2) put those files in a "
            f"cache folder ({caches}), or (3) set products.atlas_download: true, which "
            f"accepts the WU-Minn HCP open access data use terms ({HCP_TERMS_URL}); or "
            "select with a boolean vertex mask, which needs no atlas"
        )
    return found


def _describe(selection: Selection) -> str:
    if isinstance(selection, np.ndarray):
        return f"(mask of {int(selection.astype(bool).sum())} vertices)"
    return repr(selection)[:120]


def _load_config(config: PathLike | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return _plain(copy.deepcopy(dict(config)))
    path = Path(config)
    if not path.is_file():
        raise TribeConfigError(f"config file {str(path)!r} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TribeConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise TribeConfigError(f"config file {str(path)!r} must hold a mapping of keys")
    return loaded


def _plain(value: Any) -> Any:
    """Paths become strings, tuples lists: what YAML (and Snakemake's config) holds."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _validated_config(user_config: dict[str, Any], root: Path) -> dict[str, Any]:
    """The config Snakemake will see (base config file under the user's), validated."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import update_config, validate

    from tribe_core.config_check import check_config_keys

    merged: dict[str, Any] = {}
    base = root / BASE_CONFIG
    if base.is_file():
        merged = yaml.safe_load(base.read_text(encoding="utf-8")) or {}
    update_config(merged, copy.deepcopy(user_config))
    check_config_keys(merged, SCHEMA)
    try:
        validate(merged, str(SCHEMA), set_default=True)
    except WorkflowError as exc:
        raise TribeConfigError(f"invalid config: {str(exc).strip()}") from exc
    return merged


def _sheet_path(root: Path, path: Path) -> str:
    # Inside the project, the path relative to it is what a run over the stimuli folder
    # records as the rule's input; the same string keeps Snakemake's input trigger quiet.
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _sample_sheet(root: Path, files: list[Path], relative: bool = True) -> str:
    """TSV sample sheet text (``stimulus``, ``path``) for a sheet in ``root``.

    The sheet sits in the project folder itself so that relative paths in it (resolved
    against its folder) are the same strings as in a run with ``stimuli: <folder>``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["stimulus", "path"])
    for path in files:
        writer.writerow([path.stem, _sheet_path(root, path) if relative else str(path)])
    return buffer.getvalue()


def _checked_names(files: list[Path], language: str | None) -> list[str]:
    """Stimulus names of ``files`` in the given order, checked as the workflow checks them."""
    from tribe_core.stimuli import scan_stimuli

    with tempfile.TemporaryDirectory() as folder:
        sheet = Path(folder) / "stimuli.tsv"
        sheet.write_text(_sample_sheet(Path(folder), files, relative=False), encoding="utf-8")
        scan = scan_stimuli(sheet, default_language=language)
    if len(scan.problems) == 1:
        raise TribeInputError(scan.problems[0].problem, path=scan.problems[0].path)
    if scan.problems:
        listing = "\n".join(f"  - {problem}" for problem in scan.problems)
        raise TribeInputError(f"{len(scan.problems)} bad stimulus files:\n{listing}")
    by_path = {str(stim.path): name for name, stim in scan.stimuli.items()}
    return [by_path[str(path)] for path in files]


def _write_api_file(root: Path, suffix: str, text: str) -> Path:
    """Write ``text`` to a hidden, content-named file in ``root`` (kept; reused by reruns)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = root / f"{API_FILE_PREFIX}{digest}{suffix}"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text_atomic(path, text)
    return path


def _snakemake_command() -> list[str]:
    sibling = Path(sys.executable).with_name("snakemake")
    return [str(sibling)] if sibling.is_file() else [sys.executable, "-m", "snakemake"]


def _run_workflow(
    root: Path,
    config_file: Path,
    targets: list[str],
    cores: int | None,
    extra: Sequence[str],
) -> int:
    """Run Snakemake for ``targets`` in ``root``; return the number of jobs it ran."""
    if not SNAKEFILE.is_file():
        raise TribeConfigError(
            f"the workflow's Snakefile is not at {str(SNAKEFILE)!r}: tribe_core.api runs the "
            "workflow of a repository checkout (install it with `pip install -e .`)"
        )
    command = [
        *_snakemake_command(),
        "--snakefile", str(SNAKEFILE),
        "--directory", str(root),
        "--configfile", str(config_file),
        "--cores", "all" if cores is None else str(cores),
        # An interrupted call (a notebook kernel stopped mid-run) leaves outputs that the
        # next call must redo rather than refuse; every output is written atomically.
        "--rerun-incomplete",
        *extra,
        *targets,
    ]  # fmt: skip
    logger.info("running the workflow for %s in %s", ", ".join(targets), root)
    proc = subprocess.run(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    logger.debug("snakemake output:\n%s", proc.stdout)
    if proc.returncode != 0:
        raise WorkflowRunError(
            f"the workflow failed (snakemake exit status {proc.returncode}) for "
            f"{', '.join(targets)} in {str(root)!r}; each job's log is under "
            f"<results_dir>/<stimulus>/logs/. End of Snakemake's output:\n"
            f"{proc.stdout[-6000:]}"
        )
    jobs = count_jobs_run(proc.stdout)
    logger.info("snakemake ran %d job(s)", jobs)
    return jobs


def count_jobs_run(output: str) -> int:
    """Jobs a successful Snakemake run executed, read from its output.

    ``Nothing to be done`` means 0; otherwise the last ``N of M steps (..%) done``
    line gives N.

    Raises
    ------
    WorkflowRunError
        The output has neither (an unknown Snakemake output format).
    """
    if "Nothing to be done" in output:
        return 0
    done = re.findall(r"^(\d+) of (\d+) steps? \(\d+%\) done", output, flags=re.MULTILINE)
    if not done:
        raise WorkflowRunError(
            "could not read how many jobs Snakemake ran (no 'Nothing to be done' and no "
            f"'N of M steps done' line); its output ended:\n{output[-2000:]}"
        )
    return int(done[-1][0])

"""A lab's fMRIPrep surface BOLD: find runs, their TR, and where each stimulus sits in them.

fMRIPrep writes surface BOLD as one GIFTI per hemisphere,
``sub-<s>/[ses-<x>/]func/sub-<s>[_ses-<x>]_task-<t>[_run-<r>]_hemi-L_space-fsaverage5_bold.func.gii``
(and ``hemi-R``; older versions put ``space`` before ``hemi``: entities are read in any
order), with a JSON sidecar of the same name (``.json``) holding ``RepetitionTime``
(seconds) and, after slice-timing correction, ``StartTime`` (time of the first sample,
seconds). Data on fsaverage6 or fsaverage (fsaverage7) are reduced to fsaverage5 by
taking the first 10,242 vertices of each hemisphere (icosahedral nesting).

Where a stimulus is in a run comes from either

- the run's BIDS events file (``<raw BIDS>/sub-<s>/[ses-<x>/]func/..._events.tsv``, or
  one next to the BOLD): each row whose ``stim_file`` (configurable) names the stimulus
  (its file stem, or the value itself) places it at ``onset`` seconds; or
- ``runs``: a BIDS entity string (``task-movie``, ``task-movie_run-2``) -> stimulus,
  for runs that show one stimulus from the first sample on.

Sample ``i`` of a run is at ``StartTime + i * RepetitionTime`` seconds from the run's
start, the clock of the events' onsets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tribe_core.errors import TribeConfigError, TribeInputError

SPACES = ("fsaverage5", "fsaverage6", "fsaverage")
#: Entities that identify a BOLD acquisition (the events file and raw sidecar share them).
_ACQUISITION_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
_ENTITY = re.compile(r"^([a-zA-Z0-9]+)-([a-zA-Z0-9.+]+)$")


@dataclass(frozen=True)
class BoldRun:
    """One fMRIPrep surface BOLD run (both hemispheres).

    Attributes
    ----------
    left, right
        ``hemi-L`` and ``hemi-R`` GIFTI time series.
    entities
        BIDS entities of the file name (``sub``, ``ses``, ``task``, ``run``, ``space``...).
    tr_s
        Repetition time (seconds).
    start_time_s
        Time of the first sample from the run's start (``StartTime``, else 0).
    sidecar
        The JSON the TR was read from.
    events
        The run's BIDS events file, if found.
    """

    left: Path
    right: Path
    entities: dict[str, str]
    tr_s: float
    start_time_s: float
    sidecar: Path
    events: Path | None = None

    @property
    def label(self) -> str:
        """The acquisition entities as in a file name: ``sub-01_task-loc_run-1``."""
        return "_".join(
            f"{k}-{self.entities[k]}" for k in _ACQUISITION_ENTITIES if k in self.entities
        )

    def files(self) -> list[Path]:
        """Every file the run's data and timing come from."""
        return [self.left, self.right, self.sidecar] + ([self.events] if self.events else [])


@dataclass(frozen=True)
class Occurrence:
    """A stimulus shown in a run, starting ``onset_s`` after the run's start."""

    run: BoldRun
    onset_s: float
    source: str = field(default="runs")

    def as_dict(self) -> dict[str, Any]:
        """Plain values (Snakemake params, logs)."""
        return {
            "left": str(self.run.left),
            "right": str(self.run.right),
            "label": self.run.label,
            "subject": self.run.entities.get("sub", ""),
            "tr_s": self.run.tr_s,
            "start_time_s": self.run.start_time_s,
            "onset_s": self.onset_s,
            "source": self.source,
        }


def parse_entities(name: str) -> dict[str, str]:
    """BIDS entities of a file name: ``sub-01_task-x_hemi-L_bold.func.gii`` -> {sub, task, hemi}."""
    stem = name.split(".")[0]
    entities = {}
    for part in stem.split("_")[:-1]:  # the last part is the suffix (bold, events)
        match = _ENTITY.match(part)
        if match:
            entities[match.group(1)] = match.group(2)
    return entities


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TribeInputError(f"unreadable JSON sidecar: {exc}", path=path) from exc
    if not isinstance(data, dict):
        raise TribeInputError("JSON sidecar is not an object", path=path)
    return data


def _acquisition_prefix(entities: Mapping[str, str]) -> str:
    return "_".join(f"{k}-{entities[k]}" for k in _ACQUISITION_ENTITIES if k in entities)


def _raw_func_dir(bids_dir: Path, entities: Mapping[str, str]) -> Path:
    folder = bids_dir / f"sub-{entities['sub']}"
    if "ses" in entities:
        folder = folder / f"ses-{entities['ses']}"
    return folder / "func"


def _sidecar_candidates(
    left: Path, entities: Mapping[str, str], bids_dir: Path | None
) -> list[Path]:
    name = left.name.removesuffix(".func.gii")
    candidates = [left.with_name(f"{name}.json")]
    candidates.append(left.with_name(f"{name.replace('hemi-L', 'hemi-R')}.json"))
    prefix = _acquisition_prefix(entities)
    candidates += sorted(left.parent.glob(f"{prefix}_*bold.json"))
    if bids_dir is not None and "sub" in entities:
        candidates.append(_raw_func_dir(bids_dir, entities) / f"{prefix}_bold.json")
        if "task" in entities:  # BIDS inheritance: a top-level task sidecar
            candidates.append(bids_dir / f"task-{entities['task']}_bold.json")
    return list(dict.fromkeys(candidates))


def read_timing(
    left: Path, entities: Mapping[str, str], bids_dir: Path | None = None
) -> tuple[float, float, Path]:
    """``(RepetitionTime, StartTime or 0, sidecar)`` of a surface BOLD run.

    Looks in the GIFTI's own sidecar, its other hemisphere's, the run's other fMRIPrep
    sidecars, then the raw BIDS sidecar (``bids_dir``) and its top-level task sidecar.

    Raises
    ------
    TribeInputError
        No sidecar with a positive ``RepetitionTime`` (the message lists where it looked).
    """
    looked = _sidecar_candidates(left, entities, bids_dir)
    for path in looked:
        if not path.is_file():
            continue
        data = _read_json(path)
        if "RepetitionTime" not in data:
            continue
        tr = data["RepetitionTime"]
        if not isinstance(tr, int | float) or not tr > 0:
            raise TribeInputError(
                f"RepetitionTime must be a positive number, got {tr!r}", path=path
            )
        start = data.get("StartTime", 0.0)
        if not isinstance(start, int | float):
            raise TribeInputError(f"StartTime must be a number, got {start!r}", path=path)
        return float(tr), float(start), path
    raise TribeInputError(
        "no JSON sidecar with RepetitionTime for this BOLD run; looked in "
        + ", ".join(str(p) for p in looked)
        + " (fMRIPrep writes <name>.json next to the GIFTI; or set fmriprep.bids_dir to "
        "the raw BIDS dataset)",
        path=left,
    )


def find_events(left: Path, entities: Mapping[str, str], bids_dir: Path | None) -> Path | None:
    """The run's BIDS events file: next to the BOLD, else in the raw dataset."""
    prefix = _acquisition_prefix(entities)
    candidates = [left.parent / f"{prefix}_events.tsv"]
    if bids_dir is not None and "sub" in entities:
        candidates.append(_raw_func_dir(bids_dir, entities) / f"{prefix}_events.tsv")
    return next((p for p in candidates if p.is_file()), None)


def find_bold_runs(
    fmriprep_dir: str | Path,
    *,
    space: str = "fsaverage5",
    subjects: Collection[str] | None = None,
    bids_dir: str | Path | None = None,
) -> list[BoldRun]:
    """Every surface BOLD run of ``space`` in an fMRIPrep derivatives folder.

    Parameters
    ----------
    fmriprep_dir
        fMRIPrep's output folder (holding ``sub-*/``).
    space
        ``fsaverage5``, ``fsaverage6`` or ``fsaverage``.
    subjects
        Subject labels to keep (``01`` or ``sub-01``); empty or ``None``: all.
    bids_dir
        The raw BIDS dataset, for events files and sidecars fMRIPrep did not copy.

    Returns
    -------
    list of BoldRun
        Sorted by file name.

    Raises
    ------
    TribeInputError
        A ``hemi-L`` file without its ``hemi-R`` twin, or a run without TR.
    TribeConfigError
        The folder does not exist or ``space`` is not supported.
    """
    root = Path(fmriprep_dir)
    if space not in SPACES:
        raise TribeConfigError(f"fmriprep.space must be one of {SPACES}, got {space!r}")
    if not root.is_dir():
        raise TribeConfigError(f"fMRIPrep folder {str(root)!r} does not exist")
    raw = Path(bids_dir) if bids_dir else None
    if raw is not None and not raw.is_dir():
        raise TribeConfigError(f"BIDS folder {str(raw)!r} does not exist")
    wanted = {s.removeprefix("sub-") for s in subjects or ()}
    runs = []
    for left in sorted(root.glob("sub-*/**/func/*hemi-L*_bold.func.gii")):
        entities = parse_entities(left.name)
        if entities.get("space") != space or entities.get("hemi") != "L":
            continue
        if wanted and entities.get("sub") not in wanted:
            continue
        right = left.with_name(left.name.replace("hemi-L", "hemi-R"))
        if not right.is_file():
            raise TribeInputError(f"right hemisphere missing: expected {right.name}", path=left)
        tr, start, sidecar = read_timing(left, entities, raw)
        events = find_events(left, entities, raw)
        runs.append(BoldRun(left, right, entities, tr, start, sidecar, events))
    return runs


def _matches(run: BoldRun, key: str) -> bool:
    wanted = parse_entities(f"{key}_x")
    if not wanted:
        raise TribeConfigError(
            f"fmriprep.runs key {key!r} is not a BIDS entity string such as 'task-movie' or "
            "'task-movie_run-2'"
        )
    return all(_same_label(k, run.entities.get(k), v) for k, v in wanted.items())


def _same_label(entity: str, have: str | None, want: str) -> bool:
    if have is None:
        return False
    if entity == "run" and have.isdigit() and want.isdigit():
        return int(have) == int(want)  # run-1 and run-01 are the same run
    return have == want


def _preview(names: Collection[str], n: int = 8) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _event_names(value: str) -> set[str]:
    value = value.strip()
    if value in ("", "n/a"):  # BIDS marks a missing value "n/a"
        return set()
    return {value, Path(value).name, Path(value).name.split(".")[0]}


def stimulus_occurrences(
    runs: Iterable[BoldRun],
    stimuli: Collection[str],
    *,
    run_map: Mapping[str, str] | None = None,
    events_column: str = "stim_file",
) -> dict[str, list[Occurrence]]:
    """Where each stimulus was shown: stimulus -> occurrences (run, onset).

    Parameters
    ----------
    runs
        From :func:`find_bold_runs`.
    stimuli
        The workflow's stimulus names.
    run_map
        BIDS entity string -> stimulus shown from the run's first sample.
    events_column
        Events-file column naming the stimulus (its value or file stem).

    Returns
    -------
    dict
        Only stimuli shown at least once; occurrences in run order, then onset.

    Raises
    ------
    TribeConfigError
        ``run_map`` names an unknown stimulus.
    TribeInputError
        An events file is unreadable or lacks ``onset``.
    """
    found: dict[str, list[Occurrence]] = {}
    run_map = dict(run_map or {})
    unknown = sorted(set(run_map.values()) - set(stimuli))
    if unknown:
        raise TribeConfigError(
            f"fmriprep.runs names {unknown}, which are not stimuli of this workflow "
            f"(its stimuli: {_preview(stimuli)})"
        )
    for run in runs:
        for key, stimulus in run_map.items():
            if _matches(run, key):
                found.setdefault(stimulus, []).append(Occurrence(run, 0.0, f"runs: {key}"))
        if run.events is None:
            continue
        try:
            events = pd.read_csv(run.events, sep="\t", dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise TribeInputError(f"unreadable events file: {exc}", path=run.events) from exc
        if events_column not in events.columns:
            continue
        if "onset" not in events.columns:
            raise TribeInputError("events file has no 'onset' column", path=run.events)
        for _, row in events.iterrows():
            for stimulus in _event_names(row[events_column]) & set(stimuli):
                try:
                    onset = float(row["onset"])
                except ValueError as exc:
                    raise TribeInputError(
                        f"onset {row['onset']!r} of {stimulus!r} is not a number", path=run.events
                    ) from exc
                found.setdefault(stimulus, []).append(
                    Occurrence(run, onset, f"events: {run.events.name}")
                )
    return dict(sorted(found.items()))


def load_surface_bold(left: str | Path, right: str | Path) -> np.ndarray:
    """A run's BOLD as ``[n_samples, 20484]`` float32 on fsaverage5 (finer meshes reduced)."""
    from tribe_core.products.analyses import load_real_fmri

    return load_real_fmri((Path(left), Path(right)))

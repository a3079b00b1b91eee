"""Find the stimuli of a run: a folder of media files or a TSV sample sheet.

Every problem (missing file, unsupported suffix, two files with one stem, a
symlink loop, a name that cannot be a results folder) is reported before any
job runs, all of them at once, each naming its file. ``on_error="skip"`` runs
the good stimuli instead and warns about each skipped file.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.events.language import language_code
from tribe_core.events.sidecar import SIDECAR_SUFFIXES as TRANSCRIPT_SUFFIXES

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm"})
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".ogg"})
TEXT_SUFFIXES = frozenset({".txt"})
SUFFIXES: dict[str, frozenset[str]] = {
    "video": VIDEO_SUFFIXES,
    "audio": AUDIO_SUFFIXES,
    "text": TEXT_SUFFIXES,
}
# Files that sit next to stimuli but are not stimuli: transcripts and notes.
SIDECAR_SUFFIXES = tuple(s.lower() for s in TRANSCRIPT_SUFFIXES)
IGNORED_NAMES = frozenset({"readme.md", "readme.txt", "readme", "license"})
ON_ERROR = ("fail", "skip")
_MAX_LISTED = 10


@dataclass(frozen=True)
class Stimulus:
    """One input file. ``name`` is the file stem and the ``{stimulus}`` wildcard."""

    name: str
    path: Path
    kind: str
    language: str | None = None


@dataclass(frozen=True)
class StimulusProblem:
    """A file that cannot be a stimulus, and why."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{str(self.path)!r}: {self.problem}"


@dataclass
class StimulusScan:
    """What a folder or sample sheet holds.

    ``stimuli`` are the good ones (keyed by name, sorted), ``problems`` every
    file that cannot be a stimulus, ``ignored`` what a folder holds besides
    stimuli (sub-folders, hidden files, READMEs, transcripts without a
    stimulus) and ``n_sidecars`` the transcripts next to a stimulus.
    """

    source: Path
    stimuli: dict[str, Stimulus] = field(default_factory=dict)
    problems: list[StimulusProblem] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    n_sidecars: int = 0


def stimulus_kind(path: Path) -> str:
    """Return ``"video"``, ``"audio"`` or ``"text"`` from the suffix of ``path``."""
    problem = _suffix_problem(path)
    if problem:
        raise TribeInputError(problem, path=path)
    suffix = path.suffix.lower()
    return next(kind for kind, suffixes in SUFFIXES.items() if suffix in suffixes)


def _suffix_problem(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if any(suffix in suffixes for suffixes in SUFFIXES.values()):
        return None
    allowed = " ".join(sorted(s for group in SUFFIXES.values() for s in group))
    return f"unsupported suffix {path.suffix!r}; supported: {allowed}"


def _file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable, non-empty regular file, or None."""
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError as exc:  # symlink loop (Python < 3.13 raises RuntimeError)
        return f"symlink loop ({exc})"
    except OSError as exc:
        if path.is_symlink():
            return f"broken or looping symlink ({exc})"
        return "file does not exist"
    if not resolved.is_file():
        return "not a regular file"
    if resolved.stat().st_size == 0:
        return "file is empty (0 bytes)"
    return None


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a results folder name, or None.

    The name becomes ``results/{name}/``: it must not leave ``results_dir``
    (``/``, ``.``, ``..``), hide (leading ``.``), or carry Snakemake wildcard
    braces or control characters. Spaces, quotes, unicode and shell
    metacharacters are fine (no shell ever sees a name).
    """
    if not name.strip():
        return "empty"
    if "/" in name or "\\" in name:
        return "contains a path separator; it would escape the results folder"
    if name.startswith("."):
        return "starts with '.' (hidden, or '..' escaping the results folder)"
    if "{" in name or "}" in name:
        return "contains '{' or '}', which Snakemake reads as wildcards; rename the file"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character (newline, tab, ...); rename the file"
    return None


def _sidecar_stem(name: str) -> str | None:
    lower = name.lower()
    for suffix in SIDECAR_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _candidate(path: Path, name: str, language: str | None) -> tuple[Stimulus | None, str | None]:
    """The stimulus of one folder entry or sheet row, or why it cannot be one."""
    problem = _file_problem(path) or _suffix_problem(path)
    if problem is None and (bad_name := _name_problem(name)):
        problem = f"invalid stimulus name {name!r}: {bad_name}"
    if problem:
        return None, problem
    kind = stimulus_kind(path)
    return Stimulus(name, path, kind, None if language is None else language_code(language)), None


_Entry = tuple[Path, str, str | None, str | None]  # path, name, language, known problem


def _collect(scan: StimulusScan, entries: list[_Entry]) -> None:
    """Check ``(path, name, language, problem)`` entries; same-name entries are all problems."""
    by_name: dict[str, list[Path]] = {}
    for path, name, _, known in entries:
        if known is None:
            by_name.setdefault(name, []).append(path)
    for path, name, language, known in entries:
        if known is not None:
            scan.problems.append(StimulusProblem(path, known))
            continue
        stim, problem = _candidate(path, name, language)
        if len(by_name[name]) > 1:
            listed = ", ".join(repr(str(p)) for p in by_name[name])
            clash = (
                f"{len(by_name[name])} stimuli share the name {name!r} ({listed}); "
                "rename all but one (the file stem is the stimulus name)"
            )
            problem = f"{problem}; {clash}" if problem else clash
        if problem or stim is None:
            scan.problems.append(StimulusProblem(path, problem or "unusable"))
        else:
            scan.stimuli[name] = stim
    scan.stimuli = dict(sorted(scan.stimuli.items()))


def _scan_folder(scan: StimulusScan, folder: Path, default_language: str | None) -> None:
    entries: list[_Entry] = []
    sidecars: list[Path] = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") or name.lower() in IGNORED_NAMES:
            scan.ignored.append(path)
        elif _sidecar_stem(name) is not None:
            sidecars.append(path)
        elif path.is_dir():
            scan.ignored.append(path)
        else:
            entries.append((path, path.stem, default_language, None))
    stems = {path.stem for path, _, _, _ in entries}
    for path in sidecars:
        if _sidecar_stem(path.name) in stems:
            scan.n_sidecars += 1
        else:
            scan.ignored.append(path)
    scan.ignored.sort()
    _collect(scan, entries)


def _scan_sheet(scan: StimulusScan, sheet: Path, default_language: str | None) -> None:
    with sheet.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or not {"stimulus", "path"} <= set(rows[0]):
        raise TribeInputError(
            "sample sheet must be a TSV with columns 'stimulus' and 'path' "
            "(and optional 'language')",
            path=sheet,
        )
    entries: list[_Entry] = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        name = (row.get("stimulus") or "").strip()
        cell = (row.get("path") or "").strip()
        if not cell:
            entries.append((Path(f"{sheet}:{number}"), name, None, "row has no 'path'"))
            continue
        path = Path(cell)
        if not path.is_absolute():
            path = sheet.parent / path
        language = (row.get("language") or "").strip() or default_language
        entries.append((path, name, language, None))
    _collect(scan, entries)


def scan_stimuli(source: str | Path, default_language: str | None = None) -> StimulusScan:
    """Check every stimulus of a folder or TSV sample sheet without stopping at the first.

    Parameters
    ----------
    source
        A folder or a TSV sample sheet (see :func:`discover_stimuli`).
    default_language
        Language (code or name) for stimuli that do not set one.

    Returns
    -------
    StimulusScan
        The good stimuli, every problem, and what a folder holds besides stimuli.

    Raises
    ------
    TribeInputError
        ``source`` does not exist, is neither a folder nor a file, or is a sample
        sheet without the ``stimulus`` and ``path`` columns.
    """
    source = Path(source)
    scan = StimulusScan(source)
    if source.is_dir():
        _scan_folder(scan, source, default_language)
    elif source.is_file():
        _scan_sheet(scan, source, default_language)
    elif not source.exists():
        where = "" if source.is_absolute() else f" (relative to {os.getcwd()!r})"
        raise TribeInputError(
            f"the stimuli folder or sample sheet does not exist{where}; "
            "set `stimuli` in the config to a folder of stimuli or a TSV sample sheet",
            path=source,
        )
    else:
        raise TribeInputError(
            "stimulus source is neither a folder nor a TSV sample sheet", path=source
        )
    return scan


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f", ... ({more} more)" if more > 0 else "")


def ignored_summary(scan: StimulusScan) -> str | None:
    """One line saying what a folder holds besides stimuli, or None when nothing."""
    if not scan.ignored and not scan.n_sidecars:
        return None
    parts = []
    if scan.ignored:
        names = [p.name + ("/" if p.is_dir() else "") for p in scan.ignored]
        parts.append(f"{len(names)} ignored ({_listing(names)})")
    if scan.n_sidecars:
        parts.append(f"{scan.n_sidecars} transcript sidecar(s) next to their stimuli")
    return f"stimuli: in {str(scan.source)!r}, not stimuli: " + ", ".join(parts)


def _problems_message(scan: StimulusScan) -> str:
    lines = [f"  - {problem}" for problem in scan.problems]
    return "\n".join(lines)


def discover_stimuli(
    source: str | Path,
    default_language: str | None = None,
    *,
    on_error: str = "fail",
    notify: Callable[[str], None] | None = None,
) -> dict[str, Stimulus]:
    """Return the stimuli of a folder or TSV sample sheet, keyed by name.

    Parameters
    ----------
    source
        A folder (every supported file in it, not recursive; transcripts such as
        ``<stem>.TextGrid``, sub-folders, hidden files and READMEs are not
        stimuli) or a TSV with columns ``stimulus``, ``path`` and optional
        ``language`` (relative paths are relative to the TSV's folder).
    default_language
        Language for stimuli that do not set one. Languages are recorded as
        ISO 639-1 codes (``english`` -> ``en``).
    on_error
        ``"fail"``: any bad file stops the run with one error listing every
        bad file. ``"skip"``: the bad files are left out with a warning naming
        each and why.
    notify
        Receives the warning and the line saying which files were not stimuli
        (default: this module's logger).

    Returns
    -------
    dict
        ``{name: Stimulus}`` sorted by name.

    Raises
    ------
    TribeInputError
        Source missing, bad files with ``on_error="fail"``, or no stimulus left.
    """
    if on_error not in ON_ERROR:
        raise TribeConfigError(
            f"stimuli.on_error: got {on_error!r}; supported values are: {', '.join(ON_ERROR)}"
        )
    scan = scan_stimuli(source, default_language)
    summary = ignored_summary(scan)
    if summary and notify:
        notify(summary)
    elif summary:
        log.info(summary)
    n_bad = len(scan.problems)
    if n_bad and on_error == "fail":
        raise TribeInputError(
            f"{n_bad} bad stimulus file(s); fix or remove each, or set "
            "`stimuli: {source: ..., on_error: skip}` to run the others:\n"
            + _problems_message(scan),
            path=scan.source,
        )
    if n_bad:
        warning = (
            f"WARNING: stimuli: skipped {n_bad} bad file(s) (on_error: skip):\n"
            + _problems_message(scan)
        )
        if notify:
            notify(warning)
        else:
            log.warning(warning)
    if not scan.stimuli:
        left = f" (all {n_bad} skipped)" if n_bad else ""
        raise TribeInputError(
            f"no stimuli found{left} (supported: video, audio, .txt)", path=scan.source
        )
    return scan.stimuli


def stimuli_from_config(
    value: str | Mapping[str, Any], default_language: str | None = None
) -> dict[str, Stimulus]:
    """The stimuli a workflow config's ``stimuli`` names; notices go to stderr.

    Parameters
    ----------
    value
        A folder or sample sheet path, or ``{"source": path, "on_error": "fail" | "skip"}``.
    default_language
        The config's ``language``.

    Returns
    -------
    dict
        ``{name: Stimulus}`` sorted by name (see :func:`discover_stimuli`).
    """
    if isinstance(value, Mapping):
        if "source" not in value:
            raise TribeConfigError(
                "config key `stimuli` is a mapping without `source` (the folder or TSV)"
            )
        source, on_error = value["source"], str(value.get("on_error") or "fail")
    else:
        source, on_error = value, "fail"
    return discover_stimuli(source, default_language, on_error=on_error, notify=_to_stderr)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)

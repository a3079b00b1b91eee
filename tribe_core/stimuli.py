"""Find the stimuli of a run: a folder of media files or a TSV sample sheet.

Every problem (missing file, unsupported suffix, two files with one stem, a
symlink loop) is reported before any job runs, naming the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tribe_core.errors import TribeInputError
from tribe_core.events.sidecar import SIDECAR_SUFFIXES as TRANSCRIPT_SUFFIXES

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


@dataclass(frozen=True)
class Stimulus:
    """One input file. ``name`` is the file stem and the ``{stimulus}`` wildcard."""

    name: str
    path: Path
    kind: str
    language: str | None = None


def stimulus_kind(path: Path) -> str:
    """Return ``"video"``, ``"audio"`` or ``"text"`` from the suffix of ``path``."""
    suffix = path.suffix.lower()
    for kind, suffixes in SUFFIXES.items():
        if suffix in suffixes:
            return kind
    allowed = " ".join(sorted(s for group in SUFFIXES.values() for s in group))
    raise TribeInputError(f"unsupported suffix {path.suffix!r}; supported: {allowed}", path=path)


def _is_sidecar(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(SIDECAR_SUFFIXES) or name in IGNORED_NAMES or name.startswith(".")


def _check_file(path: Path) -> Path:
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError as exc:  # symlink loop (Python < 3.13 raises RuntimeError)
        raise TribeInputError(f"symlink loop ({exc})", path=path) from exc
    except OSError as exc:
        if path.is_symlink():
            raise TribeInputError(f"broken or looping symlink ({exc})", path=path) from exc
        raise TribeInputError("file does not exist", path=path) from exc
    if not resolved.is_file():
        raise TribeInputError("not a regular file", path=path)
    if resolved.stat().st_size == 0:
        raise TribeInputError("file is empty (0 bytes)", path=path)
    return path


def _add(found: dict[str, Stimulus], stim: Stimulus) -> None:
    if stim.name in found:
        raise TribeInputError(
            f"two stimuli share the name {stim.name!r}: {str(found[stim.name].path)!r} and "
            f"{str(stim.path)!r}; rename one (the file stem is the stimulus name)",
            path=stim.path,
        )
    problem = _name_problem(stim.name)
    if problem:
        raise TribeInputError(f"invalid stimulus name {stim.name!r}: {problem}", path=stim.path)
    found[stim.name] = stim


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


def discover_stimuli(
    source: str | Path, default_language: str | None = None
) -> dict[str, Stimulus]:
    """Return the stimuli of a folder or TSV sample sheet, keyed by name.

    Parameters
    ----------
    source
        A folder (every supported file in it, not recursive; transcripts such as
        ``<stem>.TextGrid`` are sidecars, not stimuli) or a TSV with columns
        ``stimulus``, ``path`` and optional ``language`` (relative paths are
        relative to the TSV's folder).
    default_language
        Language for stimuli that do not set one.

    Returns
    -------
    dict
        ``{name: Stimulus}`` sorted by name.
    """
    source = Path(source)
    found: dict[str, Stimulus] = {}
    if source.is_dir():
        for path in sorted(source.iterdir()):
            if _is_sidecar(path) or path.is_dir():
                continue
            _check_file(path)
            kind = stimulus_kind(path)
            _add(found, Stimulus(path.stem, path, kind, default_language))
    elif source.is_file():
        with source.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows or not {"stimulus", "path"} <= set(rows[0]):
            raise TribeInputError(
                "sample sheet must be a TSV with columns 'stimulus' and 'path' "
                "(and optional 'language')",
                path=source,
            )
        for row in rows:
            path = Path(row["path"])
            if not path.is_absolute():
                path = source.parent / path
            _check_file(path)
            kind = stimulus_kind(path)
            language = (row.get("language") or "").strip() or default_language
            _add(found, Stimulus(row["stimulus"].strip(), path, kind, language))
    else:
        raise TribeInputError(
            "stimulus source is neither a folder nor a TSV sample sheet", path=source
        )
    if not found:
        raise TribeInputError("no stimuli found (supported: video, audio, .txt)", path=source)
    return dict(sorted(found.items()))

"""Stimulus kinds from file suffixes (the reference's valid suffixes)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from tribe_core.errors import TribeInputError

SUFFIXES: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "video": frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm"}),
        "audio": frozenset({".wav", ".mp3", ".flac", ".ogg"}),
        "text": frozenset({".txt"}),
    }
)


def stimulus_kind(path: str | Path) -> str:
    """Return ``"video"``, ``"audio"`` or ``"text"`` from the suffix of ``path``.

    Parameters
    ----------
    path
        Stimulus file; the suffix is matched case-insensitively.

    Returns
    -------
    str
        The stimulus kind.

    Raises
    ------
    TribeInputError
        If the suffix is not one of :data:`SUFFIXES`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    for kind, suffixes in SUFFIXES.items():
        if suffix in suffixes:
            return kind
    valid = ", ".join(sorted(s for group in SUFFIXES.values() for s in group))
    raise TribeInputError(
        f"unsupported suffix {suffix or '(none)'!r}; expected one of {valid}",
        path=path,
        stimulus=path.stem,
    )

"""``transcript.json``: read, validate and write the whisperX-style transcript."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import write_text_atomic

SOURCES = ("whisperx", "sidecar", "synthesis", "none")


def validate_transcript(transcript: dict[str, Any], path: str | Path | None = None) -> None:
    """Raise :class:`TribeInputError` unless ``transcript`` has the documented layout."""
    problems = []
    if not isinstance(transcript.get("language"), str):
        problems.append("'language' must be a string")
    if transcript.get("source") not in SOURCES:
        problems.append(f"'source' must be one of {SOURCES}")
    segments = transcript.get("segments")
    if not isinstance(segments, list):
        problems.append("'segments' must be a list")
        segments = []
    for i, segment in enumerate(segments):
        for key in ("start", "end", "text", "words"):
            if key not in segment:
                problems.append(f"segment {i} lacks {key!r}")
        for word in segment.get("words", []):
            if not {"word", "start", "end"} <= set(word):
                problems.append(f"segment {i} has a word without word/start/end")
                break
    if problems:
        raise TribeInputError("invalid transcript: " + "; ".join(problems[:5]), path=path)


def write_transcript(transcript: dict[str, Any], path: str | Path) -> None:
    """Validate and write ``transcript.json`` atomically (UTF-8)."""
    validate_transcript(transcript, path)
    write_text_atomic(path, json.dumps(transcript, ensure_ascii=False, indent=1) + "\n")


def read_transcript(path: str | Path) -> dict[str, Any]:
    """Read and validate ``transcript.json``."""
    path = Path(path)
    try:
        transcript = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TribeInputError(f"cannot read transcript: {error}", path=path) from None
    validate_transcript(transcript, path)
    return transcript

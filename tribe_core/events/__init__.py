"""Events: transcripts (whisperX or sidecar) and the per-stimulus event table."""

from tribe_core.events.annotate import (
    EVENT_COLUMNS,
    build_events,
    read_events_tsv,
    write_events_tsv,
)
from tribe_core.events.sidecar import find_sidecar, read_sidecar
from tribe_core.events.transcribe import empty_transcript, transcribe
from tribe_core.events.transcript import read_transcript, write_transcript

__all__ = [
    "EVENT_COLUMNS",
    "build_events",
    "empty_transcript",
    "find_sidecar",
    "read_events_tsv",
    "read_sidecar",
    "read_transcript",
    "transcribe",
    "write_events_tsv",
    "write_transcript",
]

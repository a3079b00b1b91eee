"""Stage 2 (``rules/events.smk``): the transcript and the word events.

One function per rule, from input paths to output paths (see :mod:`tribe_core.stages`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from tribe_core.events.annotate import build_events, write_events_tsv
from tribe_core.events.sidecar import read_sidecar
from tribe_core.events.transcribe import transcribe
from tribe_core.events.transcript import read_transcript, write_transcript
from tribe_core.media.probe import MediaInfo

log = logging.getLogger(__name__)


def run_transcribe(
    wav: str | Path,
    media: str | Path,
    transcript_out: str | Path,
    *,
    sidecar: str | Path | None,
    model: str,
    language: str | None,
    device: str,
    compute_type: str,
    batch_size: int,
    align_model: str | None,
) -> None:
    """Stage 2: transcript from a sidecar if given, else whisperX."""
    if sidecar:
        transcript = read_sidecar(Path(sidecar), language=language)
        log.info("using sidecar transcript %s", sidecar)
    else:
        transcript = transcribe(
            Path(wav),
            model=model,
            language=language,
            device=device,
            compute_type=compute_type,
            batch_size=batch_size,
            align_model=align_model,
        )
    write_transcript(transcript, transcript_out)


def run_annotate_words(transcript: str | Path, media: str | Path, events_out: str | Path) -> None:
    """Stage 2: words with sentences and contexts, plus Audio/Video events."""
    events = build_events(read_transcript(transcript), MediaInfo.read(media))
    write_events_tsv(events, Path(events_out))

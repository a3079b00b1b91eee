"""Stage 1 (``rules/media.smk``): audio from media files, speech from text files.

One function per rule, from input paths to output paths (see :mod:`tribe_core.stages`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from tribe_core.events.transcript import write_transcript
from tribe_core.media.audio import check_decoded_length, extract_audio
from tribe_core.media.speech import synthesize_speech

log = logging.getLogger(__name__)


def run_extract_audio(stimulus: str | Path, wav_out: str | Path, media_out: str | Path) -> None:
    """Stage 1 (video/audio): 16 kHz mono WAV + ``media.json``."""
    info = extract_audio(Path(stimulus), Path(wav_out))
    if info.kind == "audio":
        check_decoded_length(stimulus, wav_out, info.duration_s)
    info.write(media_out)
    log.info("extracted audio of %s: %s", stimulus, info)


def run_synthesize_speech(
    text_path: str | Path,
    wav_out: str | Path,
    media_out: str | Path,
    transcript_out: str | Path,
    language: str | None,
    engine: str = "espeak",
) -> None:
    """Stage 1 (text): speech WAV, ``media.json`` and the known word timings."""
    info, transcript = synthesize_speech(Path(text_path), Path(wav_out), language, engine)
    write_transcript(transcript, transcript_out)
    info.write(media_out)

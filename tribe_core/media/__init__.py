"""Media front end: probe stimuli, extract 16 kHz audio, synthesise speech from text."""

from tribe_core.media.audio import extract_audio, read_wav, write_wav
from tribe_core.media.kinds import SUFFIXES, stimulus_kind
from tribe_core.media.probe import MediaInfo, probe_media
from tribe_core.media.speech import synthesize_speech

__all__ = [
    "SUFFIXES",
    "MediaInfo",
    "extract_audio",
    "probe_media",
    "read_wav",
    "stimulus_kind",
    "synthesize_speech",
    "write_wav",
]

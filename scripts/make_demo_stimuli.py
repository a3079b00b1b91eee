"""Make the demo stimuli: a video with speech, two audio files and a text file.

Usage: ``python scripts/make_demo_stimuli.py OUT_DIR`` (needs ffmpeg and espeak-ng).
Deterministic: the same files every time (testsrc video, espeak-ng speech).

The speech of ``speech_video.mp4`` and ``speech_audio.wav`` is synthesised
word by word (:func:`tribe_core.media.synthesize_speech`, the text stimuli's
path), so every word's time is known: each gets a ``<stem>.words.tsv`` sidecar
and the workflow uses it instead of the speech recogniser (the demo's random
Whisper hears no words). ``asr_audio.wav`` has no sidecar, so the whisperX
stage still runs on one stimulus.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tribe_core.io.atomic import atomic_path, write_text_atomic
from tribe_core.media import synthesize_speech

VIDEO_TEXT = "The red fox runs across the field. It stops near the old tree."
AUDIO_TEXT = "A small boat sails on the calm lake. The wind is soft today."
ASR_TEXT = "Rain falls on the roof while the cat sleeps by the fire."  # about 3.8 s
STORY_TEXT = "Once upon a time a girl found a map. She followed it to the sea.\n"
VIDEO_S = 6  # one 60 s video chunk, 12 feature steps at 2 Hz


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True)


def espeak_wav(text: str, out: Path) -> None:
    """Synthesise ``text`` with espeak-ng, as one utterance, into a WAV file."""
    _run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(out), text])


def speak_with_timings(text: str, wav: Path) -> list[dict[str, Any]]:
    """Speak ``text`` into ``wav`` (16 kHz mono) and return its timed words.

    Returns
    -------
    list of dict
        ``{"word", "start", "end"}`` per spoken word, seconds from the file start.
    """
    text_path = wav.with_suffix(".txt")
    text_path.write_text(text + "\n", encoding="utf-8")
    _, transcript = synthesize_speech(text_path, wav, language="en")
    return [word for segment in transcript["segments"] for word in segment["words"]]


def words_tsv(words: list[dict[str, Any]]) -> str:
    """A ``<stem>.words.tsv`` sidecar: columns ``word``, ``start``, ``duration`` (s)."""
    rows = [f"{w['word']}\t{w['start']:.3f}\t{w['end'] - w['start']:.3f}" for w in words]
    return "\n".join(["word\tstart\tduration", *rows]) + "\n"


def make_demo_stimuli(out_dir: Path) -> list[Path]:
    """Write the demo stimuli and their sidecars to ``out_dir``.

    ``speech_video.mp4`` and ``speech_audio.wav`` (each with ``<stem>.words.tsv``),
    ``asr_audio.wav`` (no sidecar) and ``story.txt``. Each sidecar is renamed into
    place before its stimulus, so a stimulus never appears without its transcript
    (a run interrupted between the two would otherwise send it to the recogniser).

    Returns
    -------
    list of Path
        Every file written, each sidecar just before its stimulus.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "speech_video.mp4"
    audio = out_dir / "speech_audio.wav"
    asr = out_dir / "asr_audio.wav"
    story = out_dir / "story.txt"
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "video_speech.wav"
        words = speak_with_timings(VIDEO_TEXT, speech)
        if words[-1]["end"] > VIDEO_S:
            raise ValueError(f"the video's speech ends at {words[-1]['end']} s, after {VIDEO_S} s")
        sidecar = video.with_name(f"{video.stem}.words.tsv")
        write_text_atomic(sidecar, words_tsv(words))
        with atomic_path(video) as part:
            _run(
                [
                    "ffmpeg", "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={VIDEO_S}",
                    "-i", str(speech),
                    "-filter_complex", f"[1:a]apad=whole_dur={VIDEO_S}[a]",
                    "-map", "0:v", "-map", "[a]",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", str(VIDEO_S),
                    "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
                    "-f", "mp4", str(part),
                ]
            )  # fmt: skip
        written += [sidecar, video]

        speech = Path(tmp) / "audio_speech.wav"
        words = speak_with_timings(AUDIO_TEXT, speech)
        sidecar = audio.with_name(f"{audio.stem}.words.tsv")
        write_text_atomic(sidecar, words_tsv(words))
        with atomic_path(audio) as part:
            shutil.copyfile(speech, part)
        written += [sidecar, audio]

    with atomic_path(asr) as part:
        espeak_wav(ASR_TEXT, part)
    write_text_atomic(story, STORY_TEXT)
    return [*written, asr, story]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    for path in make_demo_stimuli(parser.parse_args().out_dir):
        print(path)


if __name__ == "__main__":
    main()

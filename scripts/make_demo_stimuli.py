"""Make the demo stimuli: a short video with speech, an audio file and a text file.

Usage: ``python scripts/make_demo_stimuli.py OUT_DIR`` (needs ffmpeg and espeak-ng).
Deterministic: the same files every time (testsrc video, espeak-ng speech).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

VIDEO_TEXT = "The red fox runs across the field. It stops near the old tree."
AUDIO_TEXT = "A small boat sails on the calm lake. The wind is soft today."
STORY_TEXT = "Once upon a time a girl found a map. She followed it to the sea.\n"


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True)


def espeak_wav(text: str, out: Path) -> None:
    """Synthesise ``text`` with espeak-ng into a WAV file."""
    _run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(out), text])


def make_demo_stimuli(out_dir: Path) -> list[Path]:
    """Write ``speech_video.mp4``, ``speech_audio.wav`` and ``story.txt`` to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "speech_video.mp4"
    audio = out_dir / "speech_audio.wav"
    story = out_dir / "story.txt"
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "speech.wav"
        espeak_wav(VIDEO_TEXT, speech)
        _run(
            [
                "ffmpeg", "-y", "-loglevel", "error",
                "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6",
                "-i", str(speech),
                "-filter_complex", "[1:a]apad=whole_dur=6[a]",
                "-map", "0:v", "-map", "[a]",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "6",
                "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
                str(video),
            ]
        )  # fmt: skip
        espeak_wav(AUDIO_TEXT, audio)
    story.write_text(STORY_TEXT, encoding="utf-8")
    return [video, audio, story]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    for path in make_demo_stimuli(parser.parse_args().out_dir):
        print(path)


if __name__ == "__main__":
    main()

"""Make a synthetic film with a speech-like track and its word transcript.

``python benchmarks/make_film.py --minutes 60 --out-dir /tmp/film``

writes ``film.mp4`` (ffmpeg's testsrc2 pattern under moving noise, so every
frame must really be decoded; H.264 + AAC; one minute encoded, then repeated
by stream copy, which takes seconds instead of minutes) and ``film.words.tsv``, the
sidecar transcript (``word``, ``start``, ``duration`` in seconds) that
replaces the speech recogniser in the workflow
(:func:`tribe_core.events.sidecar.read_sidecar`). The track is a voiced,
pitch-gliding buzz gated on for each word: 2.5 words per second, 0.3 s each,
i.e. 9,000 words an hour, a speaker's rate. Words cycle through an English
paragraph, so sentences end with punctuation. Needs only an ``ffmpeg``
binary (the one on PATH or imageio-ffmpeg's; lavfi sources, no espeak-ng).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
from pathlib import Path
from typing import Any

WORD_PERIOD_S = 0.4  # one word every 0.4 s: 2.5 words/s, 9,000 words in an hour
WORD_DURATION_S = 0.3
LOOP_S = 60.0  # the film repeats its first minute (a multiple of WORD_PERIOD_S)
SAMPLE_RATE_HZ = 16000
# Three harmonics of a 120 +- 20 Hz voice, on while a word is spoken.
SPEECH_EXPR = (
    "0.25*(sin(2*PI*(120+20*sin(2*PI*0.3*t))*t)+0.5*sin(4*PI*(120+20*sin(2*PI*0.3*t))*t)"
    f"+0.25*sin(6*PI*(120+20*sin(2*PI*0.3*t))*t))*lt(mod(t,{WORD_PERIOD_S}),{WORD_DURATION_S})"
)


def transcript_words(duration_s: float) -> list[tuple[str, float, float]]:
    """``(word, start_s, duration_s)`` of every word spoken in ``duration_s``."""
    from tribe_core.demo_models.text import _CORPUS

    vocabulary = _CORPUS.split()
    n_words = int((duration_s - WORD_DURATION_S) // WORD_PERIOD_S) + 1 if duration_s > 0 else 0
    return [
        (vocabulary[i % len(vocabulary)], round(i * WORD_PERIOD_S, 3), WORD_DURATION_S)
        for i in range(max(0, n_words))
    ]


def write_words_tsv(words: list[tuple[str, float, float]], path: Path) -> None:
    """Write the sidecar transcript (``word``, ``start``, ``duration``)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["word", "start", "duration"])
        writer.writerows(words)


def make_film(
    out_dir: Path,
    *,
    minutes: float = 60.0,
    fps: float = 25.0,
    size: str = "640x360",
    name: str = "film",
    ffmpeg: str | None = None,
) -> dict[str, Any]:
    """Write ``<name>.mp4`` and ``<name>.words.tsv`` into ``out_dir``; return their facts."""
    from tribe_core.features.video import ffmpeg_binary

    duration_s = round(minutes * 60.0, 3)
    if duration_s <= 0:
        raise ValueError(f"--minutes must be positive, got {minutes}")
    out_dir.mkdir(parents=True, exist_ok=True)
    video, tsv = out_dir / f"{name}.mp4", out_dir / f"{name}.words.tsv"
    partial = out_dir / f".{name}.partial.mp4"
    ffmpeg = ffmpeg or ffmpeg_binary()
    loop_s = min(duration_s, LOOP_S)
    picture = f"testsrc2=size={size}:rate={fps},noise=alls=12:allf=t+u"
    speech = f"aevalsrc=exprs='{SPEECH_EXPR}':s={SAMPLE_RATE_HZ}:c=mono"
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", speech, "-t", str(loop_s),
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "48k", "-f", "mp4", str(partial)],
        check=True,
    )  # fmt: skip
    if duration_s > loop_s:  # repeat the minute, stream-copied: every frame still decodes
        minute = out_dir / f".{name}.minute.mp4"
        partial.replace(minute)
        listing = out_dir / f".{name}.concat.txt"
        n_loops = int(-(-duration_s // loop_s))
        listing.write_text(f"file '{minute.name}'\n" * n_loops)
        subprocess.run(
            [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
             "-i", str(listing), "-t", str(duration_s), "-c", "copy", "-f", "mp4", str(partial)],
            check=True,
        )  # fmt: skip
        minute.unlink()
        listing.unlink()
    partial.replace(video)  # a killed run leaves no half film under the final name
    words = transcript_words(duration_s)
    write_words_tsv(words, tsv)
    return {
        "video": str(video),
        "transcript": str(tsv),
        "duration_s": duration_s,
        "fps": fps,
        "size": size,
        "n_words": len(words),
        "video_mb": round(video.stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--name", default="film")
    parser.add_argument("--ffmpeg", help="ffmpeg binary (default: PATH, else imageio-ffmpeg's)")
    args = parser.parse_args()
    facts = make_film(
        args.out_dir, minutes=args.minutes, fps=args.fps, size=args.size, name=args.name,
        ffmpeg=args.ffmpeg,
    )  # fmt: skip
    print(json.dumps(facts, indent=2))


if __name__ == "__main__":
    main()

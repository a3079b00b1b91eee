"""tribe_core.media on real files made by ffmpeg and espeak-ng."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.media import (
    SUFFIXES,
    MediaInfo,
    extract_audio,
    probe_media,
    read_wav,
    stimulus_kind,
    synthesize_speech,
)
from tribe_core.media.speech import SENTENCE_GAP_S, WORD_GAP_S, split_text

TONE_HZ = 440.0


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True)


def make_video(path: Path, duration_s: float = 2.0, audio: bool = True) -> Path:
    """testsrc video at 25 fps, with a 440 Hz tone when ``audio``."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=25:duration={duration_s}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency={TONE_HZ:g}:duration={duration_s}"]
        args += ["-c:a", "aac"]
    ffmpeg(*args, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-t", str(duration_s), str(path))
    return path


def dominant_hz(samples: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate_hz)[np.argmax(spectrum)])


def test_suffix_table_and_kinds(tmp_path: Path) -> None:
    assert SUFFIXES["video"] == {".mp4", ".avi", ".mkv", ".mov", ".webm"}
    assert SUFFIXES["audio"] == {".wav", ".mp3", ".flac", ".ogg"}
    assert SUFFIXES["text"] == {".txt"}
    assert stimulus_kind("a/b/Movie.MKV") == "video"
    assert stimulus_kind("x.flac") == "audio"
    assert stimulus_kind("story.txt") == "text"
    with pytest.raises(TribeInputError, match=r"notes\.pdf.*unsupported suffix '\.pdf'"):
        stimulus_kind(tmp_path / "notes.pdf")


def test_media_info_round_trip() -> None:
    info = MediaInfo("video", "/x/a b.mp4", 12.5, has_audio=False, has_video=True, fps=29.97)
    assert MediaInfo.from_json(info.to_json()) == info
    assert MediaInfo.from_dict(json.loads(info.to_json())) == info
    assert json.loads(info.to_json())["fps"] == pytest.approx(29.97)


def test_extract_audio_from_video_with_audio(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", 2.0)
    info = extract_audio(video, tmp_path / "out" / "audio.wav")
    assert info.kind == "video" and info.has_audio and info.has_video
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    samples, rate = read_wav(tmp_path / "out" / "audio.wav")
    assert rate == 16000
    assert samples.size == pytest.approx(2.0 * 16000, abs=0.1 * 16000)
    assert dominant_hz(samples, rate) == pytest.approx(TONE_HZ, abs=2)
    assert not list((tmp_path / "out").glob(".*tmp*")), "temporary file left behind"


def test_extract_audio_without_audio_stream(tmp_path: Path) -> None:
    video = make_video(tmp_path / "silent.mp4", 3.0, audio=False)
    info = extract_audio(video, tmp_path / "audio.wav")
    assert info.has_audio is False and info.has_video is True
    assert info.duration_s == pytest.approx(3.0, abs=0.1)  # the timeline is the video's
    samples, rate = read_wav(tmp_path / "audio.wav")
    assert samples.size == 0 and rate == 16000


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".mp3", "libmp3lame"), (".flac", "flac"), (".ogg", "libvorbis")]
)
def test_extract_audio_from_compressed_audio(tmp_path: Path, suffix: str, codec: str) -> None:
    src = tmp_path / f"tone{suffix}"
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={TONE_HZ:g}:duration=1.5:sample_rate=44100",
           "-ac", "2", "-c:a", codec, str(src))  # fmt: skip
    info = extract_audio(src, tmp_path / "audio.wav")
    assert info.kind == "audio" and info.has_audio and not info.has_video and info.fps is None
    samples, rate = read_wav(tmp_path / "audio.wav")
    assert rate == 16000
    assert samples.size == pytest.approx(1.5 * 16000, abs=0.1 * 16000)
    assert dominant_hz(samples, rate) == pytest.approx(TONE_HZ, abs=2)


def test_mp3_with_cover_art_is_not_video(tmp_path: Path) -> None:
    cover = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "color=red:size=32x32", "-frames:v", "1", str(cover))
    src = tmp_path / "song.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-i", str(cover), "-map", "0:a",
           "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png",
           "-disposition:v", "attached_pic", str(src))  # fmt: skip
    info = probe_media(src)
    assert info.has_audio and not info.has_video


def test_corrupt_media_names_file_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "broken clip.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(TribeInputError) as error:
        extract_audio(bad, tmp_path / "audio.wav")
    message = str(error.value)
    assert "broken clip.mp4" in message
    assert "Invalid data" in message or "moov atom" in message  # ffmpeg's own reason
    assert not (tmp_path / "audio.wav").exists()


def test_missing_media_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(TribeInputError, match="not found"):
        extract_audio(tmp_path / "nothing.wav", tmp_path / "audio.wav")


def test_hostile_file_names(tmp_path: Path) -> None:
    name = "clip $(touch pwned) `touch pwned2` 'q' \"dq\" ü 視 -a:b.mp4"
    video = make_video(tmp_path / name, 1.0)
    info = extract_audio(video, tmp_path / f"out {name}.wav")
    assert info.has_audio and Path(info.source).name == name
    samples, _ = read_wav(tmp_path / f"out {name}.wav")
    assert samples.size > 0.9 * 16000
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert not Path("pwned2").exists()


def test_text_has_no_audio_to_extract(tmp_path: Path) -> None:
    text = tmp_path / "story.txt"
    text.write_text("Hello.", encoding="utf-8")
    assert probe_media(text).kind == "text"
    with pytest.raises(TribeInputError, match="synthesize_speech"):
        extract_audio(text, tmp_path / "audio.wav")


def test_split_text_glues_punctuation() -> None:
    assert split_text("Hello  world — again. Is it?\nYes!") == [
        ["Hello", "world—", "again."],
        ["Is", "it?"],
        ["Yes!"],
    ]


def _silence_before(samples: np.ndarray, t_s: float, gap_s: float) -> bool:
    i = int(round(t_s * 16000))
    return bool(np.all(np.abs(samples[max(0, i - int(gap_s * 16000)) : i - 8]) <= 64))


def _speech_after(samples: np.ndarray, t_s: float) -> bool:
    i = int(round(t_s * 16000))
    return bool(np.abs(samples[i : i + 400]).max() > 64)


_REFERENCES: dict[tuple[str, str], np.ndarray] = {}


def _reference_word(word: str, language: str, folder: Path) -> np.ndarray:
    """The word spoken alone by the espeak-ng CLI, resampled by ffmpeg (independent path)."""
    raw, wav = folder / "ref22k.wav", folder / "ref16k.wav"
    spoken = re.sub(r"^[^\w]+|[^\w]+$", "", word)
    subprocess.run(["espeak-ng", "-v", language, "-w", str(raw), spoken], check=True)
    ffmpeg("-i", str(raw), "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", str(wav))
    samples, _ = read_wav(wav)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 64)
    return samples[loud[0] : loud[-1] + 1].astype(np.float64)


def check_word_timings(wav: Path, transcript: dict, folder: Path, search_s: float = 0.3) -> float:
    """Locate every word in the audio by cross-correlation and compare with its start.

    Each word is synthesised again, independently (espeak-ng CLI + ffmpeg
    resampling), and found in the stimulus by normalised cross-correlation
    within +-``search_s`` of its transcript start. Returns the largest
    |found onset - transcript start| in seconds.
    """
    samples, rate = read_wav(wav)
    audio = samples.astype(np.float64)
    worst = 0.0
    for word in (w for s in transcript["segments"] for w in s["words"]):
        key = re.sub(r"^[^\w]+|[^\w]+$", "", word["word"]).lower()
        cache_key = (transcript["language"], key)
        if cache_key not in _REFERENCES:
            _REFERENCES[cache_key] = _reference_word(key, transcript["language"], folder)
        ref = _REFERENCES[cache_key]
        lo = max(0, int((word["start"] - search_s) * rate))
        hi = min(audio.size, int((word["start"] + search_s) * rate) + ref.size)
        window = audio[lo:hi]
        corr = fftconvolve(window, ref[::-1], mode="valid")
        energy = np.sqrt(np.maximum(fftconvolve(window**2, np.ones(ref.size), mode="valid"), 0))
        found = (lo + int(np.argmax(corr / (energy + 1e-9)))) / rate
        worst = max(worst, abs(found - word["start"]))
        assert word["end"] > word["start"]
    return worst


def test_synthesize_speech_word_timings(tmp_path: Path) -> None:
    text = tmp_path / "story.txt"
    text.write_text("The red fox runs, then stops. Is it tired? Yes — very!\n", encoding="utf-8")
    info, transcript = synthesize_speech(text, tmp_path / "audio.wav", language="en")
    assert info.kind == "text" and info.has_audio and not info.has_video
    assert transcript["source"] == "synthesis" and transcript["language"] == "en"
    words = [w["word"] for s in transcript["segments"] for w in s["words"]]
    assert words == ["The", "red", "fox", "runs,", "then", "stops.", "Is", "it", "tired?",
                     "Yes—", "very!"]  # fmt: skip
    assert [s["text"] for s in transcript["segments"]] == [
        "The red fox runs, then stops.",
        "Is it tired?",
        "Yes— very!",
    ]
    samples, rate = read_wav(tmp_path / "audio.wav")
    assert samples.size / rate == pytest.approx(info.duration_s)
    timed = [w for s in transcript["segments"] for w in s["words"]]
    for word in timed:
        assert _speech_after(samples, word["start"]), word
        assert _silence_before(samples, word["start"], WORD_GAP_S * 0.8), word
    # sentence pauses are real silences of the chosen length
    first_end = transcript["segments"][0]["words"][-1]["end"]
    second_start = transcript["segments"][1]["words"][0]["start"]
    assert second_start - first_end == pytest.approx(SENTENCE_GAP_S, abs=0.002)
    assert check_word_timings(tmp_path / "audio.wav", transcript, tmp_path) < 0.02
    # the measurement sees a timing error: shift every word by 0.15 s
    for segment in transcript["segments"]:
        for word in segment["words"]:
            word["start"] += 0.15
            word["end"] += 0.15
    assert check_word_timings(tmp_path / "audio.wav", transcript, tmp_path) > 0.13


def test_synthesis_is_deterministic(tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("One two three.", encoding="utf-8")
    _, first = synthesize_speech(text, tmp_path / "1.wav", language="en")
    _, second = synthesize_speech(text, tmp_path / "2.wav", language="en")
    assert first == second
    assert (tmp_path / "1.wav").read_bytes() == (tmp_path / "2.wav").read_bytes()


def test_language_detection_and_other_voice(tmp_path: Path) -> None:
    text = tmp_path / "fr.txt"
    text.write_text(
        "Le petit chat dort sur le canapé rouge. Il fait très beau aujourd'hui.", encoding="utf-8"
    )
    info, transcript = synthesize_speech(text, tmp_path / "audio.wav")
    assert transcript["language"] == "fr"
    assert info.duration_s > 2.0


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty"), (b"  \n ... \n", "empty"), (b"caf\xe9 au lait", "not valid UTF-8")],
)
def test_bad_text_is_a_clear_error(tmp_path: Path, content: bytes, match: str) -> None:
    text = tmp_path / "bad story.txt"
    text.write_bytes(content)
    with pytest.raises(TribeInputError, match=match) as error:
        synthesize_speech(text, tmp_path / "audio.wav", language="en")
    assert "bad story.txt" in str(error.value)
    assert not (tmp_path / "audio.wav").exists()


def test_unknown_voice_and_engine_are_config_errors(tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("Hello.", encoding="utf-8")
    with pytest.raises(TribeConfigError, match="espeak-ng failed for language 'qq'"):
        synthesize_speech(text, tmp_path / "audio.wav", language="qq")
    with pytest.raises(TribeConfigError, match="unknown speech engine"):
        synthesize_speech(text, tmp_path / "audio.wav", engine="festival")


def test_gtts_offline_is_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("Hello.", encoding="utf-8")
    with pytest.raises(TribeConfigError, match="gTTS") as error:
        synthesize_speech(text, tmp_path / "audio.wav", language="en", engine="gtts")
    assert "espeak" in str(error.value)  # names the offline alternative


@pytest.mark.slow
def test_long_synthesis_word_timings(tmp_path: Path) -> None:
    """>= 3 minutes of speech: every word start matches the audio within 0.25 s."""
    rng = np.random.default_rng(0)
    vocabulary = ("the cat dog runs over under a big small red field tree river house "
                  "quickly slowly and then again near far bright dark stone").split()  # fmt: skip
    sentences = []
    for _ in range(100):
        n_words = int(rng.integers(4, 10))
        words = [str(rng.choice(vocabulary))]
        while len(words) < n_words:
            candidate = str(rng.choice(vocabulary))
            if candidate != words[-1]:  # a repeated word would be found twice
                words.append(candidate)
        sentences.append(" ".join(words).capitalize() + ".")
    text = tmp_path / "long.txt"
    text.write_text(" ".join(sentences), encoding="utf-8")
    info, transcript = synthesize_speech(text, tmp_path / "audio.wav", language="en")
    assert info.duration_s >= 180
    worst = check_word_timings(tmp_path / "audio.wav", transcript, tmp_path)
    assert worst < 0.02
    last = transcript["segments"][-1]["words"][-1]
    assert info.duration_s - 1.0 < last["end"] <= info.duration_s


def test_ten_minute_silent_video_keeps_its_timeline(tmp_path: Path) -> None:
    """No audio stream: 0-sample WAV, but the media (and event) timeline is 10 minutes."""
    from tribe_core.events import build_events

    video = tmp_path / "silent.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=16x16:rate=1:duration=600",
           "-c:v", "libx264", "-preset", "ultrafast", str(video))  # fmt: skip
    info = extract_audio(video, tmp_path / "audio.wav")
    assert info.duration_s == pytest.approx(600.0, abs=1.0)
    assert not info.has_audio and info.has_video
    assert read_wav(tmp_path / "audio.wav")[0].size == 0
    events = build_events({"language": "en", "source": "none", "segments": []}, info)
    assert events.type.tolist() == ["Video"]
    assert events.duration.iloc[0] == pytest.approx(600.0, abs=1.0)

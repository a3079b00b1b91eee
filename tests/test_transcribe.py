"""whisperX's whole Python path (VAD, CTranslate2 Whisper, CTC alignment), offline, tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tribe_core.demo_models.whisper import build_tiny_whisper
from tribe_core.errors import TribeConfigError
from tribe_core.events import build_events, transcribe
from tribe_core.events.transcript import validate_transcript
from tribe_core.media import probe_media, synthesize_speech, write_wav


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"), seed=0)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any HTTP(S) request fails at once: a download attempt would error, not hang."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def all_words(transcript: dict) -> list[dict]:
    return [w for s in transcript["segments"] for w in s["words"]]


def test_tiny_models_layout(tiny_whisper: dict[str, Path]) -> None:
    import json

    asr, align = tiny_whisper["asr"], tiny_whisper["align"]
    for name in ("model.bin", "config.json", "vocabulary.json", "tokenizer.json",
                 "preprocessor_config.json"):  # fmt: skip
        assert (asr / name).is_file(), name
    vocabulary = json.loads((asr / "vocabulary.json").read_text())
    assert len(vocabulary) == 51865  # multilingual Whisper layout
    assert vocabulary[50257] == "<|endoftext|>" and vocabulary[50259] == "<|en|>"
    assert vocabulary[50363] == "<|notimestamps|>" and vocabulary[-1] == "<|30.00|>"
    assert (align / "model.safetensors").is_file() and (align / "vocab.json").is_file()


def test_tiny_models_are_deterministic(tmp_path: Path, tiny_whisper: dict[str, Path]) -> None:
    again = build_tiny_whisper(tmp_path, seed=0)
    for key in ("asr", "align"):
        weights = "model.bin" if key == "asr" else "model.safetensors"
        assert (again[key] / weights).read_bytes() == (tiny_whisper[key] / weights).read_bytes()


def test_no_audio_gives_empty_transcript(tmp_path: Path) -> None:
    wav = tmp_path / "audio.wav"
    write_wav(wav, np.zeros(0, dtype=np.int16), 16000)
    transcript = transcribe(wav, model="/nonexistent/model", language=None)
    assert transcript == {"language": "en", "source": "none", "segments": []}
    validate_transcript(transcript)


def test_missing_model_dir_is_a_config_error(tmp_path: Path) -> None:
    wav = tmp_path / "audio.wav"
    write_wav(wav, np.ones(16000, dtype=np.int16), 16000)
    with pytest.raises(TribeConfigError, match="does not exist"):
        transcribe(wav, model=str(tmp_path / "nope"), language="en")


def test_whisperx_runs_offline_on_speech(
    tmp_path: Path, tiny_whisper: dict[str, Path], offline: None
) -> None:
    text = tmp_path / "story.txt"
    text.write_text("The red fox runs across the field. It stops near the old tree.", "utf-8")
    media, _ = synthesize_speech(text, tmp_path / "audio.wav", language="en")
    transcript = transcribe(
        tmp_path / "audio.wav",
        model=str(tiny_whisper["asr"]),
        language="en",
        device="cpu",
        compute_type="int8",
        batch_size=4,
        align_model=str(tiny_whisper["align"]),
    )
    validate_transcript(transcript)
    assert transcript["source"] == "whisperx" and transcript["language"] == "en"
    # the VAD is real (pyannote, bundled): one speech region starting at the speech
    assert len(transcript["segments"]) >= 1
    first = transcript["segments"][0]
    assert first["start"] == pytest.approx(0.2, abs=0.25)  # synthesis lead-in is 0.2 s
    assert transcript["segments"][-1]["end"] <= media.duration_s + 0.05
    for segment in transcript["segments"]:
        for word in segment["words"]:
            assert segment["start"] - 1e-3 <= word["start"] <= word["end"] <= segment["end"] + 1e-3
            assert word["word"] and word["word"] == word["word"].strip()
    events = build_events(transcript, probe_media(tmp_path / "audio.wav"))
    assert (events.type == "Word").sum() == len(all_words(transcript))


def test_whisperx_detects_language_when_none(
    tmp_path: Path, tiny_whisper: dict[str, Path], offline: None
) -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    rng = np.random.default_rng(0)
    write_wav(
        tmp_path / "noise.wav", (rng.standard_normal(3 * 16000) * 3000).astype(np.int16), 16000
    )
    transcript = transcribe(
        tmp_path / "noise.wav",
        model=str(tiny_whisper["asr"]),
        language=None,
        batch_size=2,
        align_model=str(tiny_whisper["align"]),
    )
    validate_transcript(transcript)
    assert transcript["language"] in _LANGUAGE_CODES


def test_untrained_punkt_is_registered_offline(offline: None) -> None:
    import nltk

    from tribe_core.events.transcribe import _ensure_punkt

    _ensure_punkt("en")
    splitter = nltk.data.load("tokenizers/punkt_tab/english.pickle")
    assert list(splitter.span_tokenize("One two. Three four.")) == [(0, 8), (9, 20)]


@pytest.mark.slow
def test_long_media_times_through_whisperx(
    tmp_path: Path, tiny_whisper: dict[str, Path], offline: None
) -> None:
    """>= 3 min of known-timing speech: every segment starts at a sentence, in the file."""
    from tests.test_events import make_long_speech

    wav, sentences = make_long_speech(tmp_path)
    media = probe_media(wav)
    transcript = transcribe(
        wav,
        model=str(tiny_whisper["asr"]),
        language="en",
        batch_size=8,
        align_model=str(tiny_whisper["align"]),
    )
    validate_transcript(transcript)
    onsets = np.array([s["onset"] for s in sentences])
    starts = np.array([s["start"] for s in transcript["segments"]])
    assert starts.size >= media.duration_s / 30  # whisperX cuts <= 30 s chunks
    # every chunk starts at a sentence onset: times are file-relative, no chunk offset added
    assert np.abs(starts[:, None] - onsets[None, :]).min(axis=1).max() < 0.25
    assert starts.max() > media.duration_s - 40  # the end of the file is reached, not stretched
    assert max(s["end"] for s in transcript["segments"]) <= media.duration_s + 0.05
    words = all_words(transcript)
    assert all(0 <= w["start"] <= w["end"] <= media.duration_s + 0.05 for w in words)


def test_unavailable_hub_model_is_a_config_error(tmp_path: Path, offline: None) -> None:
    wav = tmp_path / "audio.wav"
    write_wav(wav, np.ones(16000, dtype=np.int16), 16000)
    with pytest.raises(TribeConfigError, match="cannot load whisper model 'tiny'.*local"):
        transcribe(wav, model="tiny", language="en")

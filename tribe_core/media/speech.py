"""Speech for text stimuli, with word timings known by construction.

The reference sends text to gTTS (online) and then transcribes the speech back
with whisperX to get word times. We synthesise word by word instead and
concatenate with silences of chosen length, so every word's start and end are
known exactly (up to the silence trimming of each synthesised word) and no
speech recogniser is needed. The price is word-by-word prosody.
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np

from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.media.audio import write_wav
from tribe_core.media.probe import MediaInfo, ffmpeg_reason

SAMPLE_RATE_HZ = 16000
LEAD_IN_S = 0.2
WORD_GAP_S = 0.06
CLAUSE_GAP_S = 0.2  # after , ; :
SENTENCE_GAP_S = 0.45  # also the silence after the last word
_SILENCE_THRESHOLD = 64  # int16 amplitude; espeak-ng pads with exact zeros
_ESPEAK_RATE_HZ = 22050

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'”’)\]])\s+")
_HAS_WORD_CHAR = re.compile(r"\w")
_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def read_text_stimulus(text_path: str | Path) -> str:
    """Read a UTF-8 text stimulus; empty or undecodable text is an error."""
    text_path = Path(text_path)
    try:
        raw = text_path.read_bytes()
    except OSError as error:
        raise TribeInputError(
            f"cannot read text: {error.strerror}", path=text_path, stimulus=text_path.stem
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TribeInputError(
            f"text is not valid UTF-8 (byte {error.start}); re-save it as UTF-8",
            path=text_path,
            stimulus=text_path.stem,
        ) from None
    if not _HAS_WORD_CHAR.search(text):
        raise TribeInputError(
            "text stimulus is empty (no words to speak)", path=text_path, stimulus=text_path.stem
        )
    return text


def split_text(text: str) -> list[list[str]]:
    """Split text into sentences of word tokens.

    Tokens are whitespace-separated; a token without letters or digits (a lone
    dash, an ellipsis) is glued to the previous token, as whisperX writes
    punctuation attached to words.

    Returns
    -------
    list of list of str
        ``[n_sentences][n_words]`` tokens, punctuation kept.
    """
    sentences = []
    for chunk in _SENTENCE_END.split(" ".join(text.split())):
        tokens: list[str] = []
        for token in chunk.split():
            if _HAS_WORD_CHAR.search(token) or not tokens:
                tokens.append(token)
            else:
                tokens[-1] += token
        if tokens and any(_HAS_WORD_CHAR.search(t) for t in tokens):
            sentences.append(tokens)
    return sentences


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text`` with langdetect (seeded), ``"en"`` without it."""
    try:
        from langdetect import DetectorFactory, detect
    except ImportError:
        return "en"
    DetectorFactory.seed = 0
    try:
        return str(detect(text)).split("-")[0]
    except Exception:  # langdetect raises LangDetectException on symbol-only text
        return "en"


def _trim(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SILENCE_THRESHOLD)
    if loud.size == 0:
        return samples[:0]
    margin = int(0.005 * SAMPLE_RATE_HZ)
    return samples[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def _resample(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    if rate_hz == SAMPLE_RATE_HZ:
        return samples
    from scipy.signal import resample_poly

    out = resample_poly(samples.astype(np.float64), SAMPLE_RATE_HZ, rate_hz)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def _espeak_word(word: str, language: str) -> np.ndarray:
    """One word through espeak-ng (text on stdin: no argument parsing of the word)."""
    try:
        proc = subprocess.run(
            ["espeak-ng", "-v", language, "-z", "--stdin", "--stdout"],
            input=word.encode("utf-8"),
            capture_output=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError:
        raise TribeConfigError(
            "espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)"
        ) from None
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", errors="replace").strip()
        raise TribeConfigError(f"espeak-ng failed for language {language!r}: {reason}")
    data = proc.stdout
    start = data.find(b"data")
    if not data.startswith(b"RIFF") or start < 0:
        raise TribeConfigError("espeak-ng did not write a WAV stream")
    pcm = data[start + 8 :]
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    return _resample(samples, _ESPEAK_RATE_HZ)


def _gtts_word(word: str, language: str) -> np.ndarray:
    """One word through Google TTS (online), decoded from MP3 with ffmpeg."""
    try:
        from gtts import gTTS
    except ImportError:
        raise TribeConfigError(
            "speech engine 'gtts' needs the gTTS package (pip install gTTS) and internet; "
            "the offline default is engine 'espeak'"
        ) from None
    buffer = io.BytesIO()
    try:
        gTTS(text=word, lang=language).write_to_fp(buffer)
    except Exception as error:  # gTTSError, connection errors, unknown language
        raise TribeConfigError(
            f"gTTS could not synthesise (it needs internet access): {error}; "
            "use speech engine 'espeak' offline"
        ) from None
    try:
        pcm, _ = (
            ffmpeg.input("pipe:", format="mp3")
            .output("pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE_HZ)
            .global_args("-hide_banner")
            .run(input=buffer.getvalue(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as error:
        raise TribeConfigError(f"cannot decode gTTS audio: {ffmpeg_reason(error)}") from None
    return np.frombuffer(pcm, dtype="<i2")


_ENGINES: dict[str, Callable[[str, str], np.ndarray]] = {
    "espeak": _espeak_word,
    "gtts": _gtts_word,
}


def _gap_after(token: str, is_last_in_sentence: bool) -> float:
    if is_last_in_sentence:
        return SENTENCE_GAP_S
    if token.rstrip("\"'”’)]").endswith((",", ";", ":", "—", "-")):
        return CLAUSE_GAP_S
    return WORD_GAP_S


def synthesize_speech(
    text_path: str | Path,
    dst_wav: str | Path,
    language: str | None = None,
    engine: str = "espeak",
) -> tuple[MediaInfo, dict[str, Any]]:
    """Speak a text stimulus and return its word timings.

    Parameters
    ----------
    text_path
        UTF-8 ``.txt`` stimulus.
    dst_wav
        Output 16 kHz mono PCM16 WAV, written atomically.
    language
        ISO 639-1 code (``"en"``, ``"fr"``...); ``None`` detects it
        (langdetect when installed, else English).
    engine
        ``"espeak"`` (espeak-ng, offline) or ``"gtts"`` (Google TTS, online).

    Returns
    -------
    media : MediaInfo
        ``kind="text"``, ``duration_s`` of the speech, ``has_audio=True``.
    transcript : dict
        whisperX-style transcript with ``source="synthesis"``: one segment per
        sentence, every word with its exact ``start``/``end`` in seconds.

    Raises
    ------
    TribeInputError
        Unreadable, non-UTF-8 or empty text.
    TribeConfigError
        Unknown engine, missing engine, unknown voice, or gTTS offline.
    """
    text_path = Path(text_path)
    if engine not in _ENGINES:
        raise TribeConfigError(f"unknown speech engine {engine!r}; use one of {sorted(_ENGINES)}")
    text = read_text_stimulus(text_path)
    language = (language or detect_language(text)).split("-")[0].split("_")[0].lower()
    speak = _ENGINES[engine]
    cache: dict[str, np.ndarray] = {}
    pieces: list[np.ndarray] = [np.zeros(int(LEAD_IN_S * SAMPLE_RATE_HZ), dtype=np.int16)]
    n_samples = pieces[0].size
    segments = []
    for tokens in split_text(text):
        words = []
        for index, token in enumerate(tokens):
            spoken = _EDGE_PUNCT.sub("", token) or token
            if spoken not in cache:  # case kept: "US" and "us" sound different
                cache[spoken] = _trim(speak(spoken, language))
            audio = cache[spoken]
            start_s = n_samples / SAMPLE_RATE_HZ
            pieces.append(audio)
            n_samples += audio.size
            words.append(
                {
                    "word": token,
                    "start": round(start_s, 3),
                    "end": round(n_samples / SAMPLE_RATE_HZ, 3),
                }
            )
            gap = np.zeros(
                int(round(_gap_after(token, index == len(tokens) - 1) * SAMPLE_RATE_HZ)),
                dtype=np.int16,
            )
            pieces.append(gap)
            n_samples += gap.size
        segments.append(
            {
                "start": words[0]["start"],
                "end": words[-1]["end"],
                "text": " ".join(tokens),
                "words": words,
            }
        )
    write_wav(dst_wav, np.concatenate(pieces), SAMPLE_RATE_HZ)
    media = MediaInfo(
        kind="text",
        source=str(text_path),
        duration_s=n_samples / SAMPLE_RATE_HZ,
        has_audio=True,
        has_video=False,
        fps=None,
    )
    return media, {"language": language, "source": "synthesis", "segments": segments}

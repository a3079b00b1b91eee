"""Word-level transcription with whisperX's Python API (ASR + VAD + forced alignment).

The whole file goes through whisperX in one call: its VAD cuts the audio into
<= 30 s pieces and reports every time relative to the file start, so long media
need no offset arithmetic here. (The reference chunks long audio itself and
adds each chunk's offset to times that are already file-relative, shifting
every chunk after the first late by twice its offset: ``ExtractWordsFromAudio`` in
``tribev2/eventstransforms.py`` of https://github.com/facebookresearch/tribev2.)
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.media.audio import read_wav

SAMPLE_RATE_HZ = 16000
# The reference aligns English with the large LV-60K model; whisperX 3.8.6's own
# default for "en" is the base model, which gives different word times.
REFERENCE_ALIGN_MODELS = {"en": "WAV2VEC2_ASR_LARGE_LV60K_960H"}
_LOG = logging.getLogger(__name__)
_PUNKT_DIRS: dict[str, Path] = {}


def empty_transcript(language: str | None) -> dict[str, Any]:
    """Transcript of media without speech (``source="none"``)."""
    return {"language": language or "en", "source": "none", "segments": []}


def _ensure_punkt(language: str) -> None:
    """Make NLTK's ``punkt_tab`` model for ``language`` loadable without a download.

    ``whisperx.align`` splits each segment into sentences with Punkt and calls
    ``nltk.download`` when the model is missing (network). When it is missing
    we register an *untrained* Punkt model (empty parameter files): it splits
    after sentence-final punctuation, which is all alignment uses it for
    (sub-segment boundaries; word times do not depend on it).
    """
    import nltk
    from whisperx.utils import PUNKT_LANGUAGES

    name = PUNKT_LANGUAGES.get(language, "english")
    try:
        nltk.data.find(f"tokenizers/punkt_tab/{name}/")
        return
    except LookupError:
        pass
    if name not in _PUNKT_DIRS:
        root = Path(tempfile.mkdtemp(prefix="tribeflow-nltk-"))
        model_dir = root / "tokenizers" / "punkt_tab" / name
        model_dir.mkdir(parents=True)
        for file_name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt"):
            (model_dir / file_name).write_text("", encoding="utf-8")
        (model_dir / "ortho_context.tab").write_text("", encoding="utf-8")
        _PUNKT_DIRS[name] = root
        _LOG.warning("NLTK punkt_tab %r not installed: using an untrained Punkt model", name)
    if str(_PUNKT_DIRS[name]) not in nltk.data.path:
        nltk.data.path.append(str(_PUNKT_DIRS[name]))


def _load_audio(wav_path: Path) -> np.ndarray:
    """``[n_samples]`` float32 in [-1, 1] from our 16 kHz PCM16 WAV."""
    samples, rate_hz = read_wav(wav_path)
    if rate_hz != SAMPLE_RATE_HZ:
        raise TribeInputError(
            f"expected a {SAMPLE_RATE_HZ} Hz WAV, got {rate_hz} Hz (use extract_audio)",
            path=wav_path,
        )
    return samples.astype(np.float32) / 32768.0


def _timed_words(segment: dict[str, Any]) -> list[dict[str, Any]]:
    """Words with a start time, as the reference keeps them."""
    words = []
    for word in segment.get("words", []):
        start = word.get("start")
        if start is None or (isinstance(start, float) and np.isnan(start)):
            continue
        end = word.get("end")
        if end is None or (isinstance(end, float) and np.isnan(end)):
            end = start
        words.append({"word": str(word["word"]).strip(), "start": float(start), "end": float(end)})
    return words


def _normalise(aligned: dict[str, Any], language: str) -> dict[str, Any]:
    segments = []
    for segment in aligned.get("segments", []):
        segments.append(
            {
                "start": float(segment["start"]),
                "end": float(segment["end"]),
                "text": str(segment.get("text", "")).strip(),
                "words": _timed_words(segment),
            }
        )
    return {"language": language, "source": "whisperx", "segments": segments}


def transcribe(
    wav_path: str | Path,
    *,
    model: str,
    language: str | None,
    device: str = "cpu",
    compute_type: str = "int8",
    batch_size: int = 16,
    align_model: str | None = None,
    vad_options: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Transcribe a 16 kHz mono WAV into timed words with whisperX.

    Parameters
    ----------
    wav_path
        WAV from :func:`tribe_core.media.extract_audio` (0 samples: no audio).
    model
        faster-whisper model name (``"large-v3"``, downloaded by faster-whisper)
        or a local CTranslate2 directory.
    language
        ISO 639-1 code; ``None`` lets Whisper detect it on the first 30 s.
    device, compute_type
        ``"cpu"``/``"cuda"``; CTranslate2 compute type (``int8`` on CPU:
        float16 is CUDA-only).
    batch_size
        VAD segments decoded per batch.
    align_model
        Wav2Vec2ForCTC hub id, torchaudio bundle name or local directory;
        ``None`` is the reference's choice for English
        (``WAV2VEC2_ASR_LARGE_LV60K_960H``) and whisperX's default otherwise
        (downloaded on first use).
    vad_options
        Overrides of whisperX's ``vad_onset`` / ``vad_offset`` / ``chunk_size``.

    Returns
    -------
    dict
        ``{"language", "source": "whisperx", "segments": [{"start", "end",
        "text", "words": [{"word", "start", "end"}]}]}`` with times in seconds
        from the file start; words that alignment could not time are dropped.
        A 0-sample WAV gives an empty transcript with ``source="none"``.
    """
    wav_path = Path(wav_path)
    audio = _load_audio(wav_path)
    if audio.size == 0:
        return empty_transcript(language)
    if model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
        raise TribeConfigError(f"whisper model directory {model!r} does not exist")

    import whisperx

    threads = max(1, min(4, os.cpu_count() or 1))
    try:
        asr = whisperx.load_model(
            model,
            device,
            compute_type=compute_type,
            language=language,
            vad_method="pyannote",  # bundled with whisperX: no download
            vad_options=vad_options,
            threads=threads,
        )
    except Exception as error:  # huggingface_hub, CTranslate2 and ValueError alike
        raise TribeConfigError(
            f"cannot load whisper model {model!r} ({type(error).__name__}: {error}); offline, "
            "set transcription.model to a local CTranslate2 directory"
        ) from error
    result = asr.transcribe(audio, batch_size=batch_size, language=language)
    detected = str(result.get("language") or language or "en")
    del asr
    if not result["segments"]:
        return {"language": detected, "source": "whisperx", "segments": []}
    align_name = align_model or REFERENCE_ALIGN_MODELS.get(detected)
    try:
        aligner, metadata = whisperx.load_align_model(detected, device, model_name=align_name)
    except Exception as error:
        raise TribeConfigError(
            f"cannot load alignment model {align_name!r} for language {detected!r} "
            f"({type(error).__name__}: {error}); set transcription.align_model to a local "
            "Wav2Vec2ForCTC directory"
        ) from error
    _ensure_punkt(detected)
    aligned = whisperx.align(
        result["segments"], aligner, metadata, audio, device, return_char_alignments=False
    )
    return _normalise(aligned, detected)

"""Audio extraction: any supported media -> 16 kHz mono PCM16 WAV (ffmpeg-python)."""

from __future__ import annotations

import wave
from pathlib import Path

import ffmpeg
import numpy as np

from tribe_core.errors import TribeInputError
from tribe_core.io.atomic import atomic_path
from tribe_core.media.probe import MediaInfo, ffmpeg_name, ffmpeg_reason, probe_media


def write_wav(dst_wav: str | Path, samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write mono PCM16 samples ``[n_samples]`` (int16) to a WAV file atomically."""
    samples = np.asarray(samples, dtype=np.int16).reshape(-1)
    with atomic_path(dst_wav) as tmp, wave.open(str(tmp), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate_hz))
        handle.writeframes(samples.astype("<i2").tobytes())


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a mono PCM16 WAV written by this module.

    Returns
    -------
    samples : np.ndarray
        ``[n_samples]`` int16.
    sample_rate_hz : int
    """
    with wave.open(str(path), "rb") as handle:
        if handle.getnchannels() != 1 or handle.getsampwidth() != 2:
            raise TribeInputError("expected a mono 16-bit PCM WAV", path=path)
        frames = handle.readframes(handle.getnframes())
        return np.frombuffer(frames, dtype="<i2").astype(np.int16), handle.getframerate()


def extract_audio(src: str | Path, dst_wav: str | Path, sample_rate_hz: int = 16000) -> MediaInfo:
    """Extract the first audio stream of ``src`` as mono PCM16 WAV.

    Parameters
    ----------
    src
        Video or audio stimulus. File names are passed to ffmpeg as arguments,
        never through a shell, so any character is safe.
    dst_wav
        Output WAV, written atomically. Media without an audio stream gives a
        valid WAV with 0 samples (and ``has_audio=False``), not an error.
    sample_rate_hz
        Output sample rate (16 kHz for whisperX and w2v-BERT).

    Returns
    -------
    MediaInfo
        Probed information about ``src`` (``duration_s`` is the media's).

    Raises
    ------
    TribeInputError
        Missing, unsupported or corrupt media; the message names the file and
        carries ffmpeg's reason.
    """
    src = Path(src)
    info = probe_media(src)
    if info.kind == "text":
        raise TribeInputError(
            "a text stimulus has no audio to extract; use synthesize_speech",
            path=src,
            stimulus=src.stem,
        )
    if not info.has_audio:
        write_wav(dst_wav, np.zeros(0, dtype=np.int16), sample_rate_hz)
        return info
    with atomic_path(dst_wav) as tmp:
        stream = ffmpeg.input(ffmpeg_name(src)).output(
            ffmpeg_name(tmp),
            format="wav",
            acodec="pcm_s16le",
            ac=1,
            ar=int(sample_rate_hz),
            map="0:a:0",
            vn=None,
            sn=None,
            map_metadata=-1,
        )
        try:
            stream.overwrite_output().global_args("-nostdin", "-hide_banner").run(
                capture_stdout=True, capture_stderr=True
            )
        except ffmpeg.Error as error:
            raise TribeInputError(
                f"ffmpeg cannot decode the audio: {ffmpeg_reason(error)}",
                path=src,
                stimulus=src.stem,
            ) from None
    return info


def check_decoded_length(stimulus: str | Path, wav: str | Path, duration_s: float) -> None:
    """Refuse an audio file that decodes much shorter than it declares (truncated).

    A shortfall of more than 0.5 s and 5 % of ``duration_s`` deletes ``wav`` and
    raises :class:`TribeInputError` naming ``stimulus``.
    """
    stimulus, wav = Path(stimulus), Path(wav)
    with wave.open(str(wav), "rb") as handle:
        decoded_s = handle.getnframes() / handle.getframerate()
    if duration_s - decoded_s > max(0.5, 0.05 * duration_s):
        wav.unlink(missing_ok=True)
        raise TribeInputError(
            f"truncated or corrupt audio: it declares {duration_s:.2f} s but only "
            f"{decoded_s:.2f} s decode; re-encode or replace the file",
            path=stimulus,
            stimulus=stimulus.stem,
        )

"""Audio features: w2v-BERT 2.0 (or any HF audio encoder) hidden states at 2 Hz.

Semantics of neuralset 0.0.2's ``Wav2VecBert`` on the reference's chunked
Audio events (:func:`tribe_core.features.timing.chunk_bounds`), per chunk:

1. samples ``[round(start * sr), + round(duration * sr))`` of the WAV,
   channels averaged, resampled to the feature extractor's rate if needed
   (julius, as the reference), z-scored (``(x - mean) / (1e-8 + std)``,
   unbiased std) when ``norm_audio``;
2. the model's feature extractor (fbank + per-bin CMVN for w2v-BERT), one
   forward, all hidden states ``[N, D, frames]`` -> layer groups ``[L, D, frames]``;
3. frames resampled to ``round(duration * 2)`` steps with nearest-neighbour
   interpolation (``torch.nn.functional.interpolate``'s default);
4. placed on the stimulus grid at the chunk start.

Chunks of equal length (all but the last, 60 s each) are encoded in one
batch (``spec.batch_size``): no padding is involved, so a batch gives the
same values as one chunk at a time. Chunks are read from disk one batch at
a time, so long media need little host memory.
A WAV with no samples gives ``None`` (absent modality).
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from tribe_core.batching import run_with_batch_fallback
from tribe_core.errors import TribeInputError
from tribe_core.features._hf import check_model_layout, load_model, load_preprocessor
from tribe_core.features.layers import aggregate_layers
from tribe_core.features.spec import FeatureSpec
from tribe_core.features.timing import (
    assemble_blocks,
    chunk_bounds,
    n_feature_steps,
    timed_array_slices,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WavInfo:
    """Rate, channels, sample width (bytes) and length of a PCM WAV file."""

    rate: int
    n_channels: int
    width: int
    n_samples: int


def _open_wav(path: Path) -> wave.Wave_read:
    try:
        return wave.open(str(path), "rb")
    except (wave.Error, EOFError, OSError) as exc:
        raise TribeInputError(f"not a readable PCM WAV file ({exc})", path=path) from exc


def wav_info(path: str | Path) -> WavInfo:
    """Header facts of a PCM WAV file."""
    path = Path(path)
    with _open_wav(path) as handle:
        info = WavInfo(
            handle.getframerate(), handle.getnchannels(), handle.getsampwidth(), handle.getnframes()
        )
    if info.width not in (1, 2, 4):
        raise TribeInputError(f"unsupported WAV sample width {info.width} bytes", path=path)
    return info


def read_wav(path: str | Path, offset: int = 0, n_samples: int | None = None) -> np.ndarray:
    """Samples ``[n, channels]`` (float64 in ``[-1, 1)``, as soundfile reads them).

    ``offset`` / ``n_samples`` read a part only (fewer samples at the end).
    """
    path = Path(path)
    info = wav_info(path)
    with _open_wav(path) as handle:
        handle.setpos(min(offset, info.n_samples))
        raw = handle.readframes(info.n_samples if n_samples is None else n_samples)
    if info.width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128) / 128
    else:
        dtype = np.int16 if info.width == 2 else np.int32
        data = np.frombuffer(raw, dtype).astype(np.float64) / float(2 ** (8 * info.width - 1))
    return data.reshape(-1, info.n_channels)


def load_audio_model(spec: FeatureSpec) -> tuple[torch.nn.Module, Any]:
    """Model and feature extractor of ``spec.model``."""
    check_model_layout(spec)  # from the config, before loading any weight
    extractor = load_preprocessor(spec, "feature_extractor")
    model = load_model(spec)
    return model, extractor


def _prepare_chunk(samples: np.ndarray, rate: int, target_rate: int, norm: bool) -> torch.Tensor:
    wav = torch.Tensor(samples)  # float32, as the reference
    if rate != target_rate:
        import julius

        wav = julius.resample.ResampleFrac(old_sr=int(rate), new_sr=int(target_rate))(wav.T).T
    wav = torch.mean(wav, dim=1)
    if norm:
        wav = (wav - wav.mean()) / (1e-8 + wav.std())
    return wav


def _model_inputs(extractor: Any, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Feature-extractor outputs (fbank + CMVN for w2v-BERT) ``[1, frames, F]`` per waveform."""
    feats = [
        extractor(
            w.numpy(), return_tensors="pt", sampling_rate=extractor.sampling_rate, do_normalize=True
        )
        for w in wavs
    ]
    return [f["input_features"] if "input_features" in f else f["input_values"] for f in feats]


@torch.no_grad()
def _encode(
    model: torch.nn.Module, inputs: list[torch.Tensor], spec: FeatureSpec
) -> list[torch.Tensor]:
    """Layer groups ``[L, D, frames]`` (float32) of equal-length inputs, one forward."""
    batch = torch.cat(inputs).to(spec.device, dtype=cast(torch.dtype, model.dtype))
    states = model(batch, output_hidden_states=True).hidden_states
    hidden = torch.stack(states).float()  # [N, B, frames, D]
    groups = aggregate_layers(hidden, spec.layers, spec.layer_aggregation)  # [L, B, frames, D]
    return [groups[:, b].transpose(-1, -2).cpu() for b in range(len(inputs))]


def _read_part(
    wav_path: str | Path, part: list[tuple[float, float]], rate: int, extractor: Any, norm: bool
) -> list[torch.Tensor]:
    """Model inputs of a group of chunks (disk read, resampling, z-score, fbank: CPU work)."""
    wavs = []
    for start, duration in part:
        samples = read_wav(wav_path, int(round(start * rate)), int(round(duration * rate)))
        if len(samples) < 2:
            raise TribeInputError("audio chunk shorter than two samples", path=wav_path)
        wavs.append(_prepare_chunk(samples, rate, extractor.sampling_rate, norm))
    return _model_inputs(extractor, wavs)


def iter_audio_feature_blocks(
    wav_path: str | Path,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any] | None = None,
    chunks: Sequence[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_step, features [L, D, n])`` per group of chunks, in time order.

    Blocks are disjoint and cut to the grid of ``n_feature_steps(duration_s)``
    steps; each chunk is read from disk when it is encoded (the next group's
    CPU preparation overlaps with the current forward), so host memory stays
    at about two groups of ``batch_size`` chunks. ``chunks`` selects chunk
    indices (a time shard); ``None`` is all. Nothing is yielded for a WAV
    without samples.
    """
    info = wav_info(wav_path)
    if info.n_samples == 0:
        return
    net, extractor = model if model is not None else load_audio_model(spec)
    rate = info.rate
    bounds = chunk_bounds(info.n_samples / rate, spec.chunk_max_s, spec.chunk_min_s)
    selected = [bounds[c] for c in (range(len(bounds)) if chunks is None else sorted(chunks))]
    parts = [selected[i : i + spec.batch_size] for i in range(0, len(selected), spec.batch_size)]
    n_steps = n_feature_steps(duration_s, spec.frequency_hz)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_read_part, wav_path, parts[0], rate, extractor, spec.norm_audio)
        for k, part in enumerate(parts):
            inputs = pending.result()
            if k + 1 < len(parts):
                pending = pool.submit(
                    _read_part, wav_path, parts[k + 1], rate, extractor, spec.norm_audio
                )
            if len({x.shape[1] for x in inputs}) > 1:  # unequal chunks: no padding, one each
                latents = [t for x in inputs for t in _encode(net, [x], spec)]
            else:  # out of GPU memory: halve the chunk batch (with a warning)
                latents = [  # the lambda runs before the loop moves on (this part's inputs)
                    t
                    for done in run_with_batch_fallback(
                        lambda a, b: _encode(net, inputs[a:b], spec),  # noqa: B023
                        len(inputs), len(inputs), logger=log, what="audio chunks",
                    )
                    for t in done
                ]  # fmt: skip
            for (start, duration), latent in zip(part, latents, strict=True):
                steps = int(round(duration * spec.frequency_hz))
                if steps != latent.shape[-1] and steps > 0:
                    latent = F.interpolate(latent, steps)
                slices = timed_array_slices(n_steps, spec.frequency_hz, latent.shape[-1], start)
                if slices is not None:
                    yield slices[0].start, np.ascontiguousarray(latent.numpy()[..., slices[1]])


def extract_audio_features(
    wav_path: str | Path,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any] | None = None,
    chunks: Sequence[int] | None = None,
) -> np.ndarray | None:
    """Audio features ``[L, D, T]`` (float32, ``T = n_feature_steps(duration_s)``).

    Parameters
    ----------
    wav_path
        The stimulus' ``audio.wav`` (PCM; 16 kHz mono in the workflow).
    spec
        Audio feature settings.
    duration_s
        Stimulus duration, which sets the number of 2 Hz steps.
    model
        Optional preloaded ``(model, feature_extractor)`` from :func:`load_audio_model`.
    chunks
        Only these chunks (a time shard); other steps stay zero.

    Returns
    -------
    ``[L, D, T]`` array, or ``None`` when the WAV holds no samples.
    """
    blocks = iter_audio_feature_blocks(wav_path, spec, duration_s, model, chunks)
    return assemble_blocks(blocks, n_feature_steps(duration_s, spec.frequency_hz))

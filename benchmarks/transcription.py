"""The transcription stage's model work, timed with a large-v3-sized random Whisper.

``python benchmarks/transcription.py --size full --minutes 60 --device cuda``

Random weights make a transcript meaningless (and a random decoder never
emits end-of-text), so decoding is bounded: every 30 s window decodes exactly
``--tokens`` tokens (default 128; the film's 2.5 words/s are about 75 words,
some 100 tokens, per window), greedy, with a key/value cache, ``--batch-size``
windows at a time (whisperX's batched inference, 16 in the reference). The
word aligner (``WAV2VEC2_ASR_LARGE_LV60K_960H``'s architecture: Wav2Vec2ForCTC,
24 layers of width 1,024) then runs over the same windows. Both models are
built from configs with random weights (``full``: Whisper large-v3, 1.55 B
parameters, 128 mel bins; ``tiny``: a few layers, for the CPU test); the
audio is a speech-like synthetic signal. The reference runs the same whisperX
stage (large-v3, batch 16, float16), so its reference-equivalent time is this
stage's own; the figure completes the hour-of-film total of
``benchmarks/end_to_end.py``, which reads a sidecar transcript instead.

Prints the seconds of audio per second for each part and the time the whole
film would take, and writes ``--json``. Not timed: loading weights from disk,
voice-activity detection (pyannote's segmentation model, 1.5 M parameters) and
CTranslate2's kernels (whisperX decodes with faster-whisper; this is the same
architecture in PyTorch).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE_HZ = 16000
WINDOW_S = 30.0
SIZES = {
    # openai/whisper-large-v3's config
    "full": {
        "whisper": dict(
            d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
            decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120,
            num_mel_bins=128, vocab_size=51866, max_source_positions=1500,
            max_target_positions=448,
        ),
        "aligner": dict(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
            intermediate_size=4096, conv_bias=True, feat_extract_norm="layer",
            do_stable_layer_norm=True, vocab_size=32,
        ),
    },
    "tiny": {
        "whisper": dict(
            d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
            num_mel_bins=128, vocab_size=51866, max_source_positions=1500,
            max_target_positions=448,
        ),
        "aligner": dict(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
            conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True, vocab_size=32,
        ),
    },
}  # fmt: skip
START_OF_TRANSCRIPT = 50258


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Float32 mono 16 kHz: noise bursts of syllable length under a pitch contour."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
    voiced = np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE_HZ)
    envelope = (np.sin(2 * np.pi * 4.0 * t) > 0).astype(np.float32)  # ~4 syllables/s
    audio = 0.3 * voiced * envelope + 0.02 * rng.standard_normal(n)
    return audio.astype(np.float32)


def build_models(size: str, device: str, dtype: Any) -> tuple[Any, Any]:
    """Random Whisper (large-v3 layout) and Wav2Vec2ForCTC aligner, on ``device``."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC, WhisperConfig
    from transformers import WhisperForConditionalGeneration as Whisper

    torch.manual_seed(0)
    with torch.device(device):  # random init on the GPU: seconds instead of minutes
        whisper = Whisper(WhisperConfig(**SIZES[size]["whisper"]))
        aligner = Wav2Vec2ForCTC(Wav2Vec2Config(**SIZES[size]["aligner"]))
    return whisper.to(dtype=dtype).eval(), aligner.to(dtype=dtype).eval()


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """30 s windows (the last one zero-padded), as whisperX cuts VAD segments."""
    step = int(WINDOW_S * SAMPLE_RATE_HZ)
    out = []
    for start in range(0, len(audio), step):
        piece = audio[start : start + step]
        out.append(np.pad(piece, (0, step - len(piece))))
    return out


def decode_bounded(whisper: Any, features: Any, n_tokens: int) -> Any:
    """Greedy decoding of exactly ``n_tokens`` tokens per window with a KV cache."""
    import torch
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    encoded = whisper.model.encoder(features).last_hidden_state
    batch = features.shape[0]
    tokens = torch.full((batch, 1), START_OF_TRANSCRIPT, dtype=torch.long, device=features.device)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    step_input = tokens
    for _ in range(n_tokens):
        out = whisper.model.decoder(
            input_ids=step_input,
            encoder_hidden_states=encoded,
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values
        step_input = whisper.proj_out(out.last_hidden_state[:, -1:]).argmax(-1)
        tokens = torch.cat([tokens, step_input], dim=1)
    return tokens


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time ASR (encoder + bounded decoding) and alignment on ``args.minutes`` of audio."""
    import torch
    from transformers import WhisperFeatureExtractor

    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    dtype = dtype[args.dtype]
    device = torch.device(args.device)
    t0 = time.perf_counter()
    whisper, aligner = build_models(args.size, args.device, dtype)
    build_s = time.perf_counter() - t0
    extractor = WhisperFeatureExtractor(feature_size=128)
    audio = speech_like(args.minutes * 60.0)
    pieces = windows(audio)
    seconds = len(audio) / SAMPLE_RATE_HZ

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def asr(batch: list[np.ndarray]) -> Any:
        mel = extractor(batch, sampling_rate=SAMPLE_RATE_HZ, return_tensors="pt")
        return decode_bounded(whisper, mel.input_features.to(device, dtype), args.tokens)

    def align(batch: list[np.ndarray]) -> Any:
        x = torch.from_numpy(np.stack(batch)).to(device, dtype)
        x = (x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True) + 1e-7)
        return aligner(x).logits.float().log_softmax(-1)

    results: dict[str, Any] = {
        "size": args.size, "device": args.device, "dtype": args.dtype,
        "audio_s": seconds, "windows": len(pieces), "tokens_per_window": args.tokens,
        "batch_size": args.batch_size, "build_s": round(build_s, 2),
        "whisper_parameters": sum(p.numel() for p in whisper.parameters()),
        "aligner_parameters": sum(p.numel() for p in aligner.parameters()),
    }  # fmt: skip
    with torch.inference_mode():
        asr(pieces[:1])  # warm-up: kernels, allocator, lazy imports
        align(pieces[:1])
        for name, fn in (("asr", asr), ("align", align)):
            sync()
            start = time.perf_counter()
            n_out = 0
            for i in range(0, len(pieces), args.batch_size):
                out = fn(pieces[i : i + args.batch_size])
                n_out += out.shape[0]
            sync()
            took = time.perf_counter() - start
            results[name] = {
                "seconds": round(took, 3),
                "audio_s_per_s": round(seconds / took, 2),
                "windows": n_out,
            }
            if name == "asr":
                results[name]["tokens_per_window"] = int(out.shape[1] - 1)
    total = results["asr"]["seconds"] + results["align"]["seconds"]
    results["stage_s"] = round(total, 3)
    results["film_hour_s"] = round(total * 3600.0 / seconds, 1)
    if device.type == "cuda":
        results["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"],
                        default="float16" if cuda else "float32")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128, help="decoded tokens per window")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args)
    print(
        f"ASR   {results['asr']['audio_s_per_s']:8.1f} s of audio/s "
        f"({results['windows']} windows x {args.tokens} tokens, batch {args.batch_size})\n"
        f"align {results['align']['audio_s_per_s']:8.1f} s of audio/s\n"
        f"stage {results['stage_s']:.1f} s for {results['audio_s']:.0f} s of audio -> "
        f"{results['film_hour_s']:.0f} s for an hour"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark feature extraction against a reference-equivalent path (one run, one device).

``python benchmarks/features.py [--size full|tiny] [--device cuda] [--seconds 30]``
(GPU machine: ``--size full --device cuda --dtype bfloat16 --seconds 30 --batch-size 8``)

Random weights in the full-size architectures (Llama-3.2-3B, w2v-BERT 2.0,
V-JEPA2 ViT-G; ``--text-arch qwen3-0.6b`` / ``--video-arch vitl`` for the
mini variant) or the tiny demo ones, built in memory (nothing downloaded).
The stimulus is synthetic: ``--seconds`` of 25 fps video (ffmpeg testsrc2,
``--video-size``), espeak-ng speech, and 2.5 words per second whose contexts
grow like the reference's (up to 1024 words).

For each modality it prints seconds of stimulus per second of extraction,
for our path (``--dtype``, batching, shared contexts, frames decoded and
pre-processed once) and the reference-equivalent path (float32, the
reference's batch sizes: 4 contexts per forward with one context per word,
one audio chunk per forward, one clip per forward with its 64 frames
sought and decoded per clip, the V-JEPA2 predictor run as the reference
does), and the smallest cosine between the two per time step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tribe_core.demo_models.text import _byte_level_tokenizer  # noqa: E402
from tribe_core.features._hf import TORCH_DTYPES  # noqa: E402
from tribe_core.features.audio import extract_audio_features  # noqa: E402
from tribe_core.features.layers import aggregate_layers, subselected_indices  # noqa: E402
from tribe_core.features.spec import DTYPES, FeatureSpec  # noqa: E402
from tribe_core.features.text import text_features_from_words  # noqa: E402
from tribe_core.features.timing import n_feature_steps  # noqa: E402
from tribe_core.features.video import (  # noqa: E402
    VideoStream,
    clip_schedule,
    extract_video_features,
    ffmpeg_binary,
    probe_video,
)

TEXT_ARCHS = {
    "llama-3.2-3b": dict(
        family="llama", hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
        num_attention_heads=24, num_key_value_heads=8, head_dim=128,
    ),
    "qwen3-0.6b": dict(
        family="qwen3", hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128,
    ),
}  # fmt: skip
VIDEO_ARCHS = {
    "vitg": dict(hidden_size=1408, num_hidden_layers=40, num_attention_heads=22, mlp_ratio=48 / 11),
    "vitl": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, mlp_ratio=4.0),
}
W2VBERT = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
)


def _text_model(size: str, arch: str) -> tuple[torch.nn.Module, Any]:
    from transformers import LlamaConfig, LlamaModel, Qwen3Config, Qwen3Model

    tokenizer = _byte_level_tokenizer("<|begin_of_text|>", "<|end_of_text|>")
    tokenizer.padding_side = "right"
    tokenizer.pad_token = tokenizer.eos_token
    if size == "tiny":
        dims = dict(family="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=5,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8)  # fmt: skip
    else:
        dims = dict(TEXT_ARCHS[arch])
    family = dims.pop("family")
    config_cls: Any = LlamaConfig if family == "llama" else Qwen3Config
    model_cls: Any = LlamaModel if family == "llama" else Qwen3Model
    config = config_cls(vocab_size=len(tokenizer), max_position_embeddings=8192, **dims)
    torch.manual_seed(0)
    return model_cls(config).eval(), tokenizer


def _audio_model(size: str) -> tuple[torch.nn.Module, Any]:
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    dims = (
        W2VBERT
        if size == "full"
        else dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64)
    )
    config = Wav2Vec2BertConfig(feature_projection_input_dim=160, add_adapter=False, **dims)
    torch.manual_seed(0)
    return Wav2Vec2BertModel(config).eval(), SeamlessM4TFeatureExtractor()


def _video_model(size: str, arch: str) -> tuple[torch.nn.Module, Any]:
    from transformers import VJEPA2Config, VJEPA2Model, VJEPA2VideoProcessor

    if size == "full":
        config = VJEPA2Config(crop_size=256, frames_per_clip=64, **VIDEO_ARCHS[arch])
        processor = VJEPA2VideoProcessor(crop_size={"height": 256, "width": 256})
    else:
        config = VJEPA2Config(
            crop_size=32, hidden_size=32, num_attention_heads=2, num_hidden_layers=3,
            mlp_ratio=2.0, pred_hidden_size=24, pred_num_attention_heads=2,
            pred_num_hidden_layers=1,
        )  # fmt: skip
        processor = VJEPA2VideoProcessor(crop_size={"height": 32, "width": 32})
    torch.manual_seed(0)
    return VJEPA2Model(config).eval(), processor


def _place(model: torch.nn.Module, spec: FeatureSpec) -> torch.nn.Module:
    return model.to(spec.device, dtype=TORCH_DTYPES[spec.dtype])


def make_stimulus(
    folder: Path, seconds: float, video_size: str, text_history: int = 0
) -> dict[str, Any]:
    """Video, WAV and words of ``seconds`` (synthetic).

    ``text_history`` earlier words (not timed) open every context, as in the
    middle of a long stimulus: past 1024 words the context window slides and
    every word needs its own forward.
    """
    ffmpeg = ffmpeg_binary()
    video, wav = folder / "stim.mp4", folder / "speech.wav"
    source = f"testsrc2=size={video_size}:rate=25"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(seconds),
         "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(video)],
        check=True,
    )  # fmt: skip
    sentence = "the quick brown fox jumps over the lazy dog while people listen to a story"
    words = (sentence.split() * int(seconds * 3 / 14 + 2))[: int(seconds * 2.5)]
    tone = f"sine=frequency=220:duration={seconds}"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", tone,
         "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", str(wav)],
        check=True,
    )  # fmt: skip
    history = (sentence.split() * (text_history // 14 + 1))[:text_history]
    every = history + words
    contexts = [" ".join(every[max(0, i - 1023) : i + 1]) for i in range(len(history), len(every))]
    text = {
        "words": words,
        "contexts": contexts,
        "starts": np.arange(len(words)) / 2.5,
        "durations": np.full(len(words), 0.3),
    }
    return {"video": video, "wav": wav, "text": text, "duration_s": float(seconds)}


@torch.no_grad()
def reference_video_features(
    path: Path, spec: FeatureSpec, duration_s: float, model: Any
) -> np.ndarray:
    """The reference's way: per sample, seek and decode its frames; batch 1, predictor on."""
    net, processor = model
    stream: VideoStream = probe_video(path)
    n_steps = n_feature_steps(duration_s, spec.frequency_hz)
    out: np.ndarray | None = None
    for start, k, idx in clip_schedule(duration_s, stream.fps, spec):
        first = int(idx.min())
        n = int(idx.max()) - first + 1
        cmd = [ffmpeg_binary(), "-nostdin", "-ss", f"{first / stream.fps:.6f}", "-i", str(path),
               "-loglevel", "error", "-frames:v", str(n), "-f", "image2pipe",
               "-vf", f"scale={stream.width}:{stream.height}", "-sws_flags", "bicubic",
               "-pix_fmt", "rgb24", "-vcodec", "rawvideo", "-"]  # fmt: skip
        raw = subprocess.run(cmd, capture_output=True, check=True).stdout
        frames = np.frombuffer(raw, np.uint8).reshape(-1, stream.height, stream.width, 3)
        clip = frames[np.minimum(idx - first, len(frames) - 1)]
        pixels = processor(videos=list(clip), return_tensors="pt")["pixel_values_videos"]
        states = net(
            pixel_values_videos=pixels.to(spec.device, dtype=net.dtype), output_hidden_states=True
        ).hidden_states
        keep = subselected_indices(len(states), spec.layer_subselection)
        vec = aggregate_layers(
            torch.stack([states[i][0].float().mean(0) for i in keep]),
            spec.layers,
            spec.layer_aggregation,
        )
        if out is None:
            out = np.zeros((*vec.shape, n_steps), np.float32)
        step = int(round(start * spec.frequency_hz)) + k
        if step < n_steps:
            out[..., step] = vec.cpu().numpy()
    assert out is not None
    return out


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    keep = (na > 0) & (nb > 0)
    return float(((a * b).sum(0)[keep] / (na * nb)[keep]).min()) if keep.any() else float("nan")


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = fn(*args)
    sync()
    return out, time.perf_counter() - t0


def _paths(modality: str, stim: dict[str, Any], args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(model builder, our extraction, reference-equivalent extraction) of a modality."""
    duration = stim["duration_s"]
    if modality == "text":
        return (
            lambda: _text_model(args.size, args.text_arch),
            lambda m, s: _text(stim["text"], s, duration, m, None),
            lambda m, s: _text(stim["text"], s, duration, m, False),
        )
    if modality == "audio":
        ours = lambda m, s: extract_audio_features(stim["wav"], s, duration, model=m)  # noqa: E731
        return lambda: _audio_model(args.size), ours, ours
    return (
        lambda: _video_model(args.size, args.video_arch),
        lambda m, s: extract_video_features(stim["video"], s, duration, model=m),
        lambda m, s: reference_video_features(stim["video"], s, duration, m),
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every modality; print and return the figures."""
    results: dict[str, Any] = {
        "size": args.size, "device": args.device, "dtype": args.dtype,
        "text_context_stride": args.text_context_stride,
    }  # fmt: skip
    layers: dict[str, Any] = {"layers": (0.5, 0.75, 1.0), "layer_aggregation": "group_mean"}
    with tempfile.TemporaryDirectory(prefix="tribe-bench-") as tmp:
        stim = make_stimulus(Path(tmp), args.seconds, args.video_size, args.text_history)
        (Path(tmp) / "warm").mkdir()
        warm = make_stimulus(Path(tmp) / "warm", 2.0, args.video_size, args.text_history)
        duration = stim["duration_s"]
        for modality in args.modalities:
            fast = FeatureSpec(
                modality, "random", device=args.device, dtype=args.dtype,
                batch_size=args.batch_size,
                context_stride=args.text_context_stride if modality == "text" else 1, **layers,
            )  # fmt: skip
            ref = dataclasses.replace(
                fast, dtype="float32", batch_size=4 if modality == "text" else 1, context_stride=1
            )
            build, ours_fn, ref_fn = _paths(modality, stim, args)
            _, warm_ours, warm_ref = _paths(modality, warm, args)
            model = build()
            _place(model[0], ref)
            if args.warmup:  # kernels, allocator and lazy imports, on 2 s of media
                warm_ref(model, ref)
            ref_out, ref_s = _timed(ref_fn, model, ref)
            _place(model[0], fast)
            if args.warmup:
                warm_ours(model, fast)
            our_out, our_s = _timed(ours_fn, model, fast)
            row = {
                "reference_s_per_s": duration / ref_s,
                "ours_s_per_s": duration / our_s,
                "speedup": ref_s / our_s,
                "min_cosine_per_step": _min_cosine(ref_out, our_out),
                "max_abs_diff": float(np.abs(ref_out - our_out).max()),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
            if torch.cuda.is_available():
                row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
                torch.cuda.reset_peak_memory_stats()
            results[modality] = row
            print(
                f"{modality:5s} reference {row['reference_s_per_s']:8.2f} s/s | ours "
                f"{row['ours_s_per_s']:8.2f} s/s | x{row['speedup']:6.1f} | min cos "
                f"{row['min_cosine_per_step']:.5f} | peak RSS {row['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return results


def _text(text: dict[str, Any], spec: FeatureSpec, duration: float, model: Any, share: Any) -> Any:
    """Ours (``share=None``: shared contexts) or the reference's one context per word."""
    return text_features_from_words(
        text["words"], text["contexts"], text["starts"], text["durations"], spec, duration, model,
        share_contexts=share,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=DTYPES)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--video-size", default="640x360")
    parser.add_argument("--modalities", nargs="+", default=["text", "audio", "video"])
    parser.add_argument("--text-arch", choices=sorted(TEXT_ARCHS), default="llama-3.2-3b")
    parser.add_argument("--video-arch", choices=sorted(VIDEO_ARCHS), default="vitg")
    parser.add_argument(
        "--text-history", type=int, default=0,
        help="earlier words opening each context (1024+: the sliding-window regime)",
    )  # fmt: skip
    parser.add_argument(
        "--text-context-stride", type=int, default=1,
        help="words per forward once the window slides (1: exact; see FeatureSpec)",
    )  # fmt: skip
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

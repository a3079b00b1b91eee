"""Text features in the sliding regime: today's fp16 path against the fused decoder (GPU).

Usage (GPU machine)::

    python3 benchmarks/text_fused.py --arch llama-3.2-3b --seconds 60 --batch 8 \\
        --fp32-words 16 --profile-words 16 --out results_text_fused

Builds the full-size random text model (``benchmarks/features.py``'s) on the
GPU and times, side by side in one run, the text extractor's word vectors
(``tribe_core.features.text.word_vectors``: tokenising, batching, forwards,
per-word means, layer groups) of ``--seconds`` of words at 2.5 words per
second, each read after ``--history`` earlier words (1,024: every word's
context window slides, one forward per word), through

- ``today``: ``features.fused: off``, transformers' module with every hidden
  state (the path measured at 21.2 ms per word, docs/benchmarks.md);
- ``fused eager``: :mod:`tribe_core.features.llama_fused`, not compiled;
- ``fused compiled``: the same, ``torch.compile``-d (compile time apart).

Each is timed ``--repeats`` times after a warm-up on the first
``--profile-words`` words; it prints ms per word, the max abs difference of
the word vectors to today's path (and relative to the largest value), and
the min cosine per word. ``--fp32-words`` first checks float32 parity on the
GPU (no TF32) and how far each float16 path lies from float32.
``--profile-words`` profiles both float16 paths (CUDA kernels by kind).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import statistics
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tribe_core.features import llama_fused  # noqa: E402
from tribe_core.features.spec import FeatureSpec  # noqa: E402
from tribe_core.features.text import word_vectors  # noqa: E402

SENTENCE = "the quick brown fox jumps over the lazy dog while people listen to a story"


def sliding_text(seconds: float, history: int) -> tuple[list[str], list[str]]:
    """Words at 2.5 per second, each read after ``history`` earlier ones (as features.py)."""
    words = (SENTENCE.split() * int(seconds * 3 / 14 + 2))[: int(seconds * 2.5)]
    earlier = (SENTENCE.split() * (history // 14 + 1))[:history]
    every = earlier + words
    contexts = [" ".join(every[max(0, i - 1023) : i + 1]) for i in range(len(earlier), len(every))]
    return words, contexts


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _spec(dtype: str, batch: int, mode: str, device: str) -> FeatureSpec:
    spec = FeatureSpec(
        "text", "random", device=device, dtype=dtype, batch_size=batch,
        layers=(0.5, 0.75, 1.0), layer_aggregation="group_mean",
    )  # fmt: skip
    if "fused" in {f.name for f in dataclasses.fields(spec)}:
        return dataclasses.replace(spec, fused=mode)  # type: ignore[call-arg]
    object.__setattr__(spec, "fused", mode)  # FeatureSpec without the field yet
    return spec


def _run(model: Any, tok: Any, words: list[str], contexts: list[str], spec: FeatureSpec) -> Any:
    _sync()
    start = time.perf_counter()
    out = word_vectors(model, tok, words, contexts, spec)
    _sync()
    return out, time.perf_counter() - start


def _compare(ours: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    a, b = ours.reshape(len(ours), -1).astype(np.float64), ref.reshape(len(ref), -1)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    diff = float(np.abs(ours - ref).max())
    return {
        "max_abs_diff": diff,
        "max_abs_ref": float(np.abs(ref).max()),
        "max_rel_diff": diff / float(np.abs(ref).max()),
        "min_cosine": float(cos.min()),
    }


def _kind(name: str) -> str:
    low = name.lower()
    if any(k in low for k in ("flash", "fmha", "attention", "attn")):
        return "attention"
    if any(k in low for k in ("gemm", "nvjet", "cutlass", "xmma", "cublas", "sm90_")):
        return "matrix products"
    if low.startswith("triton"):
        return "Triton (fused element-wise)"
    if "memcpy" in low or "memset" in low:
        return "copies, memsets"
    if "index" in low or "scatter" in low or "gather" in low:
        return "gathers (index_select / index_add)"
    return "other element-wise (aten)"


def profile(
    model: Any, tok: Any, words: list[str], contexts: list[str], spec: FeatureSpec, out: Path
) -> dict[str, Any]:
    """Kernel time per word by kind and the top kernels, from one profiled extraction."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    word_vectors(model, tok, words, contexts, spec)  # warm
    _sync()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        word_vectors(model, tok, words, contexts, spec)
        _sync()
        wall = time.perf_counter() - start
    trace = out.with_suffix(".json")
    prof.export_chrome_trace(str(trace))
    events = json.loads(trace.read_text())["traceEvents"]
    with gzip.open(out.with_suffix(".json.gz"), "wt") as f:
        json.dump(events, f)
    trace.unlink()
    kinds: dict[str, float] = defaultdict(float)
    names: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            kinds[_kind(e["name"])] += e["dur"] / 1e3
            names[e["name"]][0] += e["dur"] / 1e3
            names[e["name"]][1] += 1
    n = len(words)
    total = sum(kinds.values())
    print(f"    profile of {n} words: wall {wall * 1e3 / n:.2f} ms per word (profiled), "
          f"kernels {total / n:.2f} ms per word")  # fmt: skip
    for kind, ms in sorted(kinds.items(), key=lambda x: -x[1]):
        print(f"      {kind:38s} {ms / n:7.3f} ms per word")
    top = sorted(names.items(), key=lambda x: -x[1][0])[:18]
    for name, (ms, count) in top:
        print(f"        {ms / n:7.3f} ms/word {int(count) // n:5d} calls/word  {name[:110]}")
    return {
        "wall_ms_per_word": wall * 1e3 / n,
        "kernel_ms_per_word": total / n,
        "by_kind": {k: v / n for k, v in kinds.items()},
        "top": [(name, ms / n, count / n) for name, (ms, count) in top],
    }


def main() -> None:
    from benchmarks.features import TEXT_ARCHS, _text_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="llama-3.2-3b", choices=sorted(TEXT_ARCHS))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--history", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fp32-words", type=int, default=16)
    parser.add_argument("--profile-words", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("results_text_fused"))
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test, no profile")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import transformers

    gpu = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    print(f"{args.arch} ({args.size}), {gpu}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}")  # fmt: skip
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 parity without TF32
    torch.backends.cudnn.allow_tf32 = False
    with torch.device(args.device):
        model, tok = _text_model(args.size, args.arch)
    words, contexts = sliding_text(args.seconds, args.history)
    n_tokens = [len(x) for x in tok(contexts, add_special_tokens=False)["input_ids"]]
    print(f"{len(words)} words, contexts of {min(n_tokens)}-{max(n_tokens)} tokens, "
          f"batch {args.batch}, {args.dtype}")  # fmt: skip
    results: dict[str, Any] = {"arch": args.arch, "words": len(words), "batch": args.batch,
                               "dtype": args.dtype, "torch": torch.__version__,
                               "transformers": transformers.__version__}  # fmt: skip
    decoder = llama_fused.fused_text_model(model, "on")
    print(f"fused decoder: {type(decoder).__name__}")
    few = args.fp32_words
    fp32: dict[str, np.ndarray] = {}
    if few:
        llama_fused.COMPILE_MIN_FORWARDS = 10**9  # eager: float32 is for parity only
        for name, mode in (("today", "off"), ("fused eager", "on")):
            try:
                out, secs = _run(
                    model, tok, words[:few], contexts[:few], _spec("float32", 4, mode, args.device)
                )
                fp32[name] = out
                print(f"float32 {name:15s} {secs * 1e3 / few:8.2f} ms per word (batch 4, cold)")
            except Exception:
                traceback.print_exc()
        if len(fp32) == 2:
            cmp = _compare(fp32["fused eager"], fp32["today"])
            results["float32"] = cmp
            print(f"float32 fused vs today: max abs diff {cmp['max_abs_diff']:.3e} (rel "
                  f"{cmp['max_rel_diff']:.2e}), min cosine {cmp['min_cosine']:.7f}")  # fmt: skip
    model.to(getattr(torch, args.dtype))
    if args.device == "cuda":
        torch.cuda.empty_cache()
    variants = (
        ("today", "off", None),
        ("fused eager", "on", False),
        ("fused compiled", "on", True),
    )
    outs: dict[str, np.ndarray] = {}
    for name, mode, compiled in variants:
        row: dict[str, Any] = {}
        try:
            if compiled is not None:
                llama_fused.COMPILE_MIN_FORWARDS = 0 if compiled else 10**9
            spec = _spec(args.dtype, args.batch, mode, args.device)
            warm = args.profile_words or args.batch
            _, first = _run(model, tok, words[:warm], contexts[:warm], spec)
            row["first_call_s"] = first
            times = []
            for _ in range(args.repeats if mode == "on" else max(2, args.repeats - 1)):
                out, secs = _run(model, tok, words, contexts, spec)
                times.append(secs * 1e3 / len(words))
            outs[name] = out
            row["ms_per_word_runs"] = times
            row["ms_per_word"] = statistics.median(times)
            if name != "today" and "today" in outs:
                row.update(_compare(out, outs["today"]))
            if fp32 and "today" in fp32:
                row["vs_float32"] = _compare(out[:few], fp32["today"])
            if mode == "on" and decoder is not None:
                row["compiled"] = decoder.compile
            results[name] = row
            extra = (f" | vs today: max abs diff {row['max_abs_diff']:.3e} (rel "
                     f"{row['max_rel_diff']:.2e}), min cos {row['min_cosine']:.6f}"
                     if "max_abs_diff" in row else "")  # fmt: skip
            vs32 = row.get("vs_float32")
            extra += (f" | vs fp32 (first {few}): max abs {vs32['max_abs_diff']:.3e}, "
                      f"min cos {vs32['min_cosine']:.6f}" if vs32 else "")  # fmt: skip
            print(f"{name:15s} {row['ms_per_word']:7.2f} ms per word (runs "
                  f"{', '.join(f'{t:.2f}' for t in times)}; first call on {warm} words "
                  f"{first:.1f} s){extra}", flush=True)  # fmt: skip
            if args.profile_words and name in ("today", "fused compiled") and args.device == "cuda":
                k = args.profile_words
                row["profile"] = profile(
                    model, tok, words[:k], contexts[:k], spec,
                    args.out / f"trace_{name.replace(' ', '_')}",
                )  # fmt: skip
        except Exception:
            traceback.print_exc()
            results[name] = {"error": traceback.format_exc(limit=3)}
    if "fused eager" in results and "fused compiled" in results:
        eager, comp = results["fused eager"], results["fused compiled"]
        if "ms_per_word" in eager and "ms_per_word" in comp:
            compile_s = comp["first_call_s"] - eager["first_call_s"]
            saved = eager["ms_per_word"] - comp["ms_per_word"]
            results["compile_s"] = compile_s
            even = compile_s * 1e3 / max(saved, 1e-9)
            print(f"compiling took about {compile_s:.1f} s; it saves {saved:.2f} ms per forward "
                  f"(break-even after about {even:.0f} forwards)")  # fmt: skip
    (args.out / "text_fused.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Fused V-JEPA2 encoder against transformers' module: ms per clip and parity, side by side (GPU).

Usage (any CUDA GPU node with torch and transformers; from the repository root)::

    python3 benchmarks/video_fused.py --archs vitg,vitl --batch 8 --json fused.json

(``--archs tiny --device cpu`` is a smoke run without a GPU.)

For each architecture (``benchmarks/features.py``'s ``VIDEO_ARCHS``: full-size
random V-JEPA2, 64-frame 256 px clips, ``--batch`` clips per forward):

1. parity at float32 on ``--parity-clips`` clips: every hidden state of the
   fused path (eager) against ``VJEPA2Model(..., output_hidden_states=True)``,
   as ``||fused - ref|| / ||ref||`` (worst state);
2. the model cast to bfloat16, ms per clip (CUDA events, after warm-up; the
   median of ``--repeats`` forwards) of: transformers' module (eager, SDPA,
   every hidden state's token mean, as the extractor takes them), the fused
   path eager and the fused path compiled with each ``--variants`` set of
   Inductor options (``cdmk`` is the extractor's; ``cdmk/fc1tri`` compiles fc1 +
   GELU apart as a Triton GEMM with GELU in its epilogue; first-call time, i.e. the
   compile, reported apart; ``--graph`` adds a CUDA-graph replay); with, for
   each, the worst cosine over clips (time steps) and hidden states of the
   token-mean states against the float32 reference (float32 without TF32);
3. a profile of the fastest compiled fused forward: device time per clip by kernel
   family (GEMM, attention, Triton-fused element-wise, copies, other) and the
   slowest kernels, plus the attention alone on q/k/v in the fused path's
   layout and in contiguous ``[B, H, N, d]`` (for each SDPA backend).

The last lines are a table; ``--json`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tribe_core.features.vjepa2_fused import (  # noqa: E402
    COMPILE_OPTIONS,
    TRITON_GEMM_OPTIONS,
    FusedVJEPA2Encoder,
)

TINY = dict(
    hidden_size=32, num_hidden_layers=3, num_attention_heads=2, mlp_ratio=2.0,
    pred_hidden_size=24, pred_num_attention_heads=2, pred_num_hidden_layers=1,
)  # fmt: skip


def build(arch: str, crop: int, device: str) -> torch.nn.Module:
    """Random V-JEPA2 (float32, eval) of ``arch`` ("tiny" for a CPU smoke run)."""
    from transformers import VJEPA2Config, VJEPA2Model

    from benchmarks.features import VIDEO_ARCHS

    dims = TINY if arch == "tiny" else VIDEO_ARCHS[arch]
    config = VJEPA2Config(crop_size=crop, frames_per_clip=64, **dims)
    with torch.device(device):
        return VJEPA2Model(config).eval()


def reference_means(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Token means ``[S, B, D]`` of transformers' hidden states (what the extractor takes)."""
    states = model(
        pixel_values_videos=pixels, output_hidden_states=True, skip_predictor=True
    ).hidden_states
    return torch.stack([s.float().mean(dim=1) for s in states])


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def ms_per_clip(fn: Callable[[], Any], clips: int, repeats: int) -> float:
    """Median ms per clip over ``repeats`` calls (CUDA events; wall clock on CPU)."""
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(stop))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times) / clips


def min_cosine(means: torch.Tensor, ref: torch.Tensor) -> float:
    """Worst cosine over hidden states and clips of ``[S, B, D]`` token means."""
    n = ref.shape[1]
    return F.cosine_similarity(means[:, :n].float(), ref, dim=-1).min().item()


# Inductor option sets to compare (--variants); unknown keys for this torch are dropped
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "mk": {"triton.multi_kernel": 1},
    "cdmk": {"coordinate_descent_tuning": True, "triton.multi_kernel": 1},  # the extractor's
    "autotune": {
        "max_autotune": True, "max_autotune_gemm": True, "coordinate_descent_tuning": True,
        "triton.multi_kernel": 1, "triton.enable_persistent_tma_matmul": True,
        "triton.cudagraphs": False,
    },
}  # fmt: skip
# Blocks compiled as three graphs (attention half, fc1 + GELU, fc2 + residual) with
# the extractor's options, except the parts named here (--variants cdmk/NAME).
_TMA = {"triton.enable_persistent_tma_matmul": True}
MLP_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "split": {},  # three graphs, all with the block's options: what the split costs
    "fc1tri": {"fc1": {**COMPILE_OPTIONS, **TRITON_GEMM_OPTIONS}},
    "fc1tma": {"fc1": {**COMPILE_OPTIONS, **TRITON_GEMM_OPTIONS, **_TMA}},
    "fc12tri": {
        "fc1": {**COMPILE_OPTIONS, **TRITON_GEMM_OPTIONS},
        "fc2": {**COMPILE_OPTIONS, **TRITON_GEMM_OPTIONS},
    },
}


def _options(options: dict[str, Any]) -> dict[str, Any]:
    import torch._inductor.config as inductor_config

    known = inductor_config.get_config_copy()
    for key in set(options) - set(known):
        print(f"  (inductor option {key} unknown to this torch: dropped)")
    return {k: v for k, v in options.items() if k in known}


FAMILIES = (  # first match wins
    ("gemm, Triton template (+ epilogue)", ("triton_tem", "mm_template")),
    ("triton (fused element-wise)", ("triton_",)),
    ("attention", ("flash", "fmha", "cudnn", "attention", "sdpa")),
    ("gemm", ("gemm", "nvjet", "cutlass", "xmma", "sm90_", "gemv")),
    ("copy", ("copy", "cat", "memcpy", "memset")),
)


def family(name: str) -> str:
    low = name.lower()
    for fam, keys in FAMILIES:
        if any(k in low for k in keys):
            return fam
    return "other element-wise"


def profile(fn: Callable[[], Any], clips: int) -> dict[str, Any]:
    """Device time per clip by kernel family and the top kernels, over one call."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        fn()
        sync()
        wall = (time.perf_counter() - t0) * 1000
    kernels: dict[str, list[float]] = {}
    for event in prof.events():
        if "cuda" not in str(getattr(event, "device_type", "")).lower():
            continue
        kernels.setdefault(event.name, []).append(event.time_range.elapsed_us() / 1000)
    families: dict[str, float] = {}
    for name, times in kernels.items():
        families[family(name)] = families.get(family(name), 0.0) + sum(times) / clips
    top = sorted(kernels.items(), key=lambda kv: -sum(kv[1]))[:15]
    return {
        "wall_ms_per_clip": wall / clips,
        "kernel_ms_per_clip": sum(families.values()),
        "families_ms_per_clip": dict(sorted(families.items(), key=lambda kv: -kv[1])),
        "top": [
            {"kernel": name[:110], "calls": len(t), "ms_per_clip": sum(t) / clips}
            for name, t in top
        ],
    }


def attention_layouts(model: torch.nn.Module, batch: int, tokens: int) -> dict[str, float]:
    """ms per clip per layer of SDPA alone: q/k/v as the fused path lays them out or contiguous."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    heads = model.config.num_attention_heads
    head = model.config.hidden_size // heads
    opts = dict(device="cuda", dtype=torch.bfloat16)
    qkv = torch.randn(batch, tokens, 3, heads, head, **opts)
    qk = torch.randn(batch, tokens, 2, heads, head, **opts)
    views = (qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2))
    dense = tuple(x.contiguous() for x in views)
    out: dict[str, float] = {}
    for backend in (None, SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION):
        for layout, (q, k, v) in (("fused layout", views), ("contiguous BHNd", dense)):
            name = f"{'default' if backend is None else backend.name} / {layout}"
            try:
                ctx = sdpa_kernel([backend]) if backend is not None else torch.no_grad()
                with ctx:
                    for _ in range(2):
                        F.scaled_dot_product_attention(q, k, v)
                    out[name] = ms_per_clip(
                        lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v), batch, 5
                    )
            except RuntimeError as exc:
                out[name] = float("nan")
                print(f"  attention {name}: refused ({str(exc)[:80]})")
    return out


def run_arch(arch: str, args: argparse.Namespace) -> dict[str, Any]:
    device = args.device
    crop = 32 if arch == "tiny" else 256
    torch.manual_seed(0)
    model = build(arch, crop, device)
    pixels32 = torch.randn(args.batch, 64, 3, crop, crop, device=device)
    res: dict[str, Any] = {
        "arch": arch, "batch": args.batch, "clips": f"64x{crop}x{crop}",
        "attn_implementation": model.config._attn_implementation,
    }  # fmt: skip
    n = min(args.parity_clips, args.batch)
    if device == "cuda":  # float32 parity: no TF32 (cuDNN convolutions default to it)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        ref_states = model(
            pixel_values_videos=pixels32[:n], output_hidden_states=True, skip_predictor=True
        ).hidden_states
        ref = torch.stack([s.float().mean(dim=1) for s in ref_states])
        fused32 = FusedVJEPA2Encoder(model, compile=False)
        _, states = fused32.forward(pixels32[:n], keep_states=True)
        assert states is not None and len(states) == len(ref_states)
        res["fp32_max_rel_err"] = max(
            ((a.float() - b.float()).norm() / b.float().norm()).item()
            for a, b in zip(states, ref_states, strict=True)
        )
        del ref_states, states, fused32
    torch.backends.cudnn.allow_tf32 = True  # torch's default again
    print(f"{arch}: float32 parity, worst state ||fused - ref|| / ||ref|| = "
          f"{res['fp32_max_rel_err']:.2e} ({n} clips)")  # fmt: skip
    model = model.to(torch.bfloat16)
    pixels = pixels32.to(torch.bfloat16)
    del pixels32
    if device == "cuda":
        torch.cuda.empty_cache()
    rows: dict[str, dict[str, float]] = {}
    with torch.inference_mode():

        def timed(name: str, fn: Callable[[], torch.Tensor]) -> None:
            t0 = time.perf_counter()
            out = fn()  # first call (compiles, if compiled)
            sync()
            first_s = time.perf_counter() - t0
            fn()
            ms = ms_per_clip(fn, args.batch, args.repeats)
            rows[name] = {"ms_per_clip": ms, "min_cos": min_cosine(fn(), ref), "first_s": first_s}
            print(f"  {name:32s} {ms:8.2f} ms/clip  min cos {rows[name]['min_cos']:.6f}  "
                  f"(first call {first_s:.1f} s)", flush=True)  # fmt: skip
            del out

        timed("transformers eager", lambda: reference_means(model, pixels))
        if device == "cuda":
            torch.cuda.empty_cache()
        if "eager" not in args.skip:
            eager = FusedVJEPA2Encoder(model, compile=False)
            timed("fused eager", lambda: eager.state_means(pixels))
            eager = None
        best: tuple[float, Any] = (float("inf"), None)
        for variant in args.variants.split(",") if device == "cuda" else []:
            block_variant, _, mlp_variant = variant.partition("/")
            options = _options(VARIANTS[block_variant])
            mlp = None
            if mlp_variant:
                mlp = {k: _options(v) for k, v in MLP_VARIANTS[mlp_variant].items()}
            try:
                fused = FusedVJEPA2Encoder(model, compile_options=options, mlp_options=mlp)
                name = f"fused compiled [{variant}]"
                timed(name, lambda: fused.state_means(pixels))  # noqa: B023
                if rows[name]["ms_per_clip"] < best[0]:
                    best = (rows[name]["ms_per_clip"], fused)
                if args.graph and variant == "default":
                    graphed = FusedVJEPA2Encoder(model, compile_options=options, cuda_graph=True)
                    timed(f"{name} + CUDA graph", lambda: graphed.state_means(pixels))  # noqa: B023
                    graphed = None
            except Exception as exc:  # report, keep the other figures
                print(f"  variant {variant}: failed ({type(exc).__name__}: {str(exc)[:300]})")
        fused = best[1]
        if fused is not None and "profile" not in args.skip:
            try:
                res["profile"] = profile(lambda: fused.state_means(pixels), args.batch)
                tokens = pixels.shape[1] // 2 * (crop // 16) ** 2
                res["attention_layouts"] = attention_layouts(model, args.batch, tokens)
            except Exception as exc:  # report, keep the other figures
                print(f"  profile: failed ({type(exc).__name__}: {str(exc)[:160]})")
    res["rows"] = rows
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="vitg,vitl", help="comma list (vitg, vitl, tiny)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parity-clips", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--variants",
        default="default,cdmk",
        help=f"comma list of {list(VARIANTS)}, each optionally /MLP with MLP one of "
        f"{list(MLP_VARIANTS)} (the block as three graphs, the MLP's with other options)",
    )
    parser.add_argument("--graph", action="store_true", help="also time a CUDA-graph replay")
    parser.add_argument("--skip", default="", help="comma list: eager, profile")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import torch._dynamo as dynamo
    import transformers

    for limit in ("cache_size_limit", "recompile_limit"):  # one compile per arch and variant
        if hasattr(dynamo.config, limit):
            setattr(dynamo.config, limit, 64)

    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"{gpu}, torch {torch.__version__}, transformers {transformers.__version__}")
    results = []
    for arch in args.archs.split(","):
        results.append(run_arch(arch, args))
        if args.json:
            args.json.write_text(json.dumps({"device": gpu, "results": results}, indent=1))
    for res in results:
        prof = res.get("profile")
        if prof:
            wall, kern = prof["wall_ms_per_clip"], prof["kernel_ms_per_clip"]
            print(f"\n{res['arch']}: one compiled fused forward, ms per clip: wall {wall:.2f}, "
                  f"kernels {kern:.2f}")  # fmt: skip
            for fam, ms in prof["families_ms_per_clip"].items():
                print(f"  {fam:32s} {ms:7.2f}")
            for row in prof["top"]:
                print(f"  {row['ms_per_clip']:7.2f} ms {row['calls']:5d}x  {row['kernel']}")
            for name, ms in res["attention_layouts"].items():
                print(f"  attention alone, {name:40s} {ms:7.3f} ms/clip/layer")
    print(f"\nV-JEPA2 bf16, 64-frame clips, batch {args.batch}, {gpu}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}")  # fmt: skip
    print(f"{'arch':<6}{'path':<32}{'ms/clip':>9}{'video s/s':>11}{'speed-up':>10}{'min cos':>10}")
    for res in results:
        base = res["rows"]["transformers eager"]["ms_per_clip"]
        for name, row in res["rows"].items():
            ms = row["ms_per_clip"]
            print(f"{res['arch']:<6}{name:<32}{ms:>9.2f}{1000 / ms / 2:>11.2f}"
                  f"{base / ms:>10.2f}{row['min_cos']:>10.5f}")  # fmt: skip
        print(
            f"{res['arch']:<6}float32 parity (worst state, relative): {res['fp32_max_rel_err']:.2e}"
        )


if __name__ == "__main__":
    main()

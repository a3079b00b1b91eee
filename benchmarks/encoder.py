"""Benchmark the TRIBE v2 encoder: per-segment latency and error per precision mode.

Full-size random weights (hidden 1152, depth 8, heads 8, 20,484 outputs,
low-rank 2048), 100-TR segments (200 feature steps at 2 Hz). The baseline is
the reference-equivalent run: our module in eager fp32 with the reference's
maths (explicit softmax attention, pooling after the subject layer), batch 8,
as the reference predicts. Every mode is timed at each batch size; its error
is measured against fp32 on the same 8 segments.

Imports only torch and ``tribe_core.encoder`` (runs where zarr is absent)::

    python benchmarks/encoder.py                 # CUDA if available
    python benchmarks/encoder.py --compile fp16,bf16,tf32   # + torch.compile, CUDA graphs
    python benchmarks/encoder.py --device cpu --batches 1 --iters 1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tribe_core.demo_models.tribe import random_encoder  # noqa: E402
from tribe_core.encoder.config import EncoderArchitecture  # noqa: E402
from tribe_core.encoder.inference import precision_context, prepare_encoder  # noqa: E402
from tribe_core.encoder.model import TribeEncoder  # noqa: E402

# Layouts of model_build_args.feature_dims: 3 layer groups with V-JEPA2 ViT-G's
# 1408 dims reproduce the measured 179,318,933 parameters.
RELEASED_DIMS = {"text": (3, 3072), "audio": (3, 1024), "video": (3, 1408)}
BRIEF_DIMS = {"text": (2, 3072), "audio": (2, 1024), "video": (2, 1536)}
RELEASED_PARAMS = 179_318_933


def full_size_arch(feature_dims: dict[str, tuple[int, int]]) -> EncoderArchitecture:
    """The released architecture with the given feature layout."""
    return EncoderArchitecture(
        feature_dims=feature_dims,
        n_outputs=20484,
        n_output_timesteps=100,
        hidden=1152,
        depth=8,
        heads=8,
        ff_mult=4,
        max_seq_len=1024,
        low_rank_head=2048,
        time_pos_embedding=True,
        subject_bias=True,
    )


def count_params(arch: EncoderArchitecture) -> int:
    """Parameter count (built on the meta device, no memory)."""
    with torch.device("meta"):
        return sum(p.numel() for p in TribeEncoder(arch).parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_segment(
    run: Callable[[], torch.Tensor], batch: int, iters: int, device: torch.device
) -> float:
    """Milliseconds per segment: median over ``iters`` timed calls after warm-up."""
    for _ in range(3):  # CUDA graphs: warm-up, record, replay
        run()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return 1000.0 * times[len(times) // 2] / batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--modes", default="fp32,tf32,bf16,fp16")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument(
        "--compile",
        default="",
        help="comma list of modes to also time with torch.compile(mode=reduce-overhead)",
    )
    parser.add_argument("--compile-budget-s", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    modes = args.modes.split(",")
    t_start = time.perf_counter()

    print(f"torch {torch.__version__}, device {device}", end="")
    if device.type == "cuda":
        print(f" ({torch.cuda.get_device_name(device)})", end="")
    print()
    arch = full_size_arch(RELEASED_DIMS)
    n_released = count_params(arch)
    n_brief = count_params(full_size_arch(BRIEF_DIMS))
    print(
        f"parameters: {n_released:,} with feature_dims {RELEASED_DIMS} "
        f"({'matches' if n_released == RELEASED_PARAMS else 'DIFFERS FROM'} the released "
        f"{RELEASED_PARAMS:,}); {n_brief:,} with {BRIEF_DIMS}"
    )

    model = random_encoder(arch, seed=args.seed, device=device)
    gen = torch.Generator(device=device).manual_seed(args.seed + 1)
    n_max = max(max(batches), 8)
    feats = {
        name: torch.randn(n_max, n_layers, dim, 200, generator=gen, device=device)
        for name, (n_layers, dim) in arch.feature_dims.items()
    }

    def batch_of(n: int) -> dict[str, torch.Tensor]:
        return {k: v[:n] for k, v in feats.items()}

    with torch.inference_mode():
        with precision_context("fp32"):
            reference = model(batch_of(8)).float()
            baseline = time_per_segment(lambda: model(batch_of(8)), 8, args.iters, device)
        print(
            f"baseline (reference-equivalent: eager fp32, reference maths, batch 8): "
            f"{baseline:.3f} ms/segment"
        )
        header = ("mode", "batch", "ms/segment", "speed-up", "max err", "rms err")
        print("{:<14}{:>6}{:>12}{:>10}{:>11}{:>11}".format(*header))
        variants: list[tuple[str, str, bool]] = [(m, m, False) for m in modes]
        variants += [(f"{m}+compile", m, True) for m in args.compile.split(",") if m]
        for label, precision, compiled in variants:
            if compiled and time.perf_counter() - t_start > args.compile_budget_s:
                print(f"{label}: skipped (time budget)")
                continue
            if compiled:
                # Each variant x batch size is one more compilation of the same forward:
                # start every variant with an empty cache so none hits the recompile limit.
                torch._dynamo.reset()
            try:
                prepared = prepare_encoder(
                    model,
                    precision=precision,
                    device=device,
                    compile=compiled and "reduce-overhead",
                )
                with precision_context(precision):
                    out = prepared(batch_of(8)).float()
                    diff = out - reference
                    max_err = (diff.abs().max() / reference.abs().max()).item()
                    rms_err = (diff.norm() / reference.norm()).item()
                    for b in batches:
                        ms = time_per_segment(
                            lambda b=b, m=prepared: m(batch_of(b)), b, args.iters, device
                        )
                        print(
                            f"{label:<14}{b:>6}{ms:>12.3f}{baseline / ms:>9.1f}x"
                            f"{max_err:>11.2e}{rms_err:>11.2e}",
                            flush=True,
                        )
            except Exception as exc:  # noqa: BLE001 - report and go on (e.g. no triton)
                print(f"{label}: failed ({type(exc).__name__}: {str(exc)[:200]})", flush=True)
            prepared = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(
        "errors: max |y - y_fp32| / max |y_fp32| and ||y - y_fp32|| / ||y_fp32|| on 8 segments; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

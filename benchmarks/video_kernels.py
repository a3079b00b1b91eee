"""V-JEPA2 clip encoder: which kernels make a clip fastest at bf16 parity (GPU).

Usage (GPU machine)::

    python3 benchmarks/video_kernels.py --arch vitg --batch 8

Full-size random V-JEPA2 (``benchmarks/features.py``'s ``VIDEO_ARCHS``), 64-frame
256 px clips. Side by side in one run: ms per clip for eager SDPA (PyTorch's
default backend choice), each SDPA backend forced (flash, cuDNN, efficient),
``torch.compile``, and FP8 (e4m3, row-wise scales) linear layers; and for each
the worst per-clip cosine against float32 of the token-mean hidden states of
every layer (the features' raw material; target >= 0.999).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(arch: str) -> torch.nn.Module:
    """Random full-size V-JEPA2 encoder (no download)."""
    from transformers import VJEPA2Config, VJEPA2Model

    from benchmarks.features import VIDEO_ARCHS

    config = VJEPA2Config(crop_size=256, frames_per_clip=64, **VIDEO_ARCHS[arch])
    return VJEPA2Model(config).eval()


class Fp8Linear(torch.nn.Module):
    """``nn.Linear`` through ``torch._scaled_mm``: e4m3 weights (per output row) and inputs
    (per token), bf16 output."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 448.0
        self.register_buffer("w8", (w / scale).to(torch.float8_e4m3fn))
        self.register_buffer("w_scale", scale.T.contiguous())  # [1, out]
        self.bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        x_scale = x2.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / 448.0
        x8 = (x2 / x_scale).to(torch.float8_e4m3fn)
        out = torch._scaled_mm(
            x8, self.w8.T, scale_a=x_scale, scale_b=self.w_scale,
            bias=self.bias, out_dtype=torch.bfloat16,
        )  # fmt: skip
        return out.reshape(*shape[:-1], out.shape[-1])


def to_fp8(model: torch.nn.Module) -> torch.nn.Module:
    """Swap the encoder layers' linear layers for :class:`Fp8Linear` (in place)."""
    for name, module in list(model.encoder.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear) and child.in_features % 16 == 0:
                setattr(module, child_name, Fp8Linear(child))
        del name
    return model


def features(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Token-mean hidden states of every layer ``[B, n_layers + 1, D]`` (float32)."""
    states = model(
        pixel_values_videos=pixels, output_hidden_states=True, skip_predictor=True
    ).hidden_states
    return torch.stack([s.float().mean(dim=1) for s in states], dim=1)


def timed(fn, pixels: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:  # noqa: ANN001
    """(ms per clip, output) after two warm-up calls."""
    with torch.inference_mode():
        for _ in range(2):
            out = fn(pixels)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            out = fn(pixels)
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000 / repeats / pixels.shape[0], out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vitg")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma list of variants to skip")
    args = parser.parse_args()
    torch.manual_seed(0)
    model32 = build(args.arch).cuda()
    pixels = torch.randn(args.batch, 64, 3, 256, 256, device="cuda")
    with torch.inference_mode():
        ref = torch.cat([features(model32, pixels[i : i + 1]) for i in range(2)])
    model = model32.to(torch.bfloat16)
    del model32
    px = pixels.to(torch.bfloat16)

    def backend(kind: SDPBackend | None):  # noqa: ANN202
        return sdpa_kernel([kind]) if kind is not None else contextlib.nullcontext()

    variants = {
        "eager sdpa (default)": (model, None),
        "eager flash": (model, SDPBackend.FLASH_ATTENTION),
        "eager cudnn": (model, SDPBackend.CUDNN_ATTENTION),
        "eager efficient": (model, SDPBackend.EFFICIENT_ATTENTION),
    }
    skip = set(filter(None, args.skip.split(",")))
    rows, kinds = [], {}
    for name, (net, kind) in variants.items():
        if name.split()[-1] in skip:
            continue
        try:
            with backend(kind):
                ms, out = timed(lambda p, n=net: features(n, p), px, args.repeats)
            rows.append((name, ms, out))
            kinds[ms] = kind
        except Exception as exc:  # a backend may refuse these shapes
            print(f"{name}: failed ({type(exc).__name__}: {str(exc)[:120]})")
    best_kind = kinds[min(kinds)]
    if "compile" not in skip:
        compiled = torch.compile(model)
        with backend(best_kind):
            ms, out = timed(lambda p: features(compiled, p), px, args.repeats)
        rows.append((f"compile (+{best_kind})", ms, out))
    if "fp8" not in skip:
        fp8 = to_fp8(model)
        with backend(best_kind):
            ms, out = timed(lambda p: features(fp8, p), px, args.repeats)
        rows.append((f"fp8 linears (+{best_kind})", ms, out))
        if "compile" not in skip:
            fp8c = torch.compile(fp8)
            with backend(best_kind):
                ms, out = timed(lambda p: features(fp8c, p), px, args.repeats)
            rows.append((f"fp8 + compile (+{best_kind})", ms, out))
    base = rows[0][1]
    print(f"V-JEPA2 {args.arch}, batch {args.batch}, 64x256x256 clips, bf16 unless said")
    print(f"{'variant':<40}{'ms/clip':>9}{'video s/s':>11}{'speed-up':>10}{'min cos':>9}")
    for name, ms, out in rows:
        cos = F.cosine_similarity(out[:2].float(), ref, dim=-1).min().item()
        print(f"{name:<40}{ms:>9.1f}{1000 / ms / 2:>11.2f}{base / ms:>10.2f}{cos:>9.5f}")


if __name__ == "__main__":
    main()

"""Lower bound on a V-JEPA2 clip's time: its matrix products and attention alone (GPU).

Usage (GPU machine)::

    python3 benchmarks/clip_floor.py --arch vitg --batch 8

A V-JEPA2 clip (64 frames, 256 px, tubelet 2, patch 16) is 8,192 tokens through
every encoder layer: four linear layers (qkv, projection, two MLP) and one
full (non-causal) attention. This times exactly those kernels, bare, in bf16 on
random tensors of the clip's shapes (``--batch`` clips at once, CUDA events,
after warm-up), for each SDPA backend that accepts them, and adds them up over
the layers. Everything else a real forward does (layer norms, GELU, residual
adds, patch embedding, the hidden-state means) is left out, so the sum is a
floor: no bf16 implementation of the same network can take less time per clip
on this GPU with these kernels. It prints the floor next to the 10 s of video
per second target (two clips per second of video: 50 ms per clip).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cuda_timing import cuda_ms  # noqa: E402

TOKENS_PER_CLIP = (64 // 2) * (256 // 16) ** 2  # 8,192


def clip_floor(
    arch_name: str, batch: int = 8, repeats: int = 20, verbose: bool = False
) -> tuple[float, list[tuple[str, float, float]]]:
    """``(ms per clip, rows)``: the bare kernels of one clip summed over the layers.

    ``rows`` are ``(kernel, ms per call of batch clips, FLOP per call)`` for one layer.
    """
    from benchmarks.features import VIDEO_ARCHS

    arch = VIDEO_ARCHS[arch_name]
    width, depth, heads = (
        arch["hidden_size"],
        arch["num_hidden_layers"],
        arch["num_attention_heads"],
    )
    mlp = int(width * arch["mlp_ratio"])
    tokens = batch * TOKENS_PER_CLIP
    bf16 = dict(device="cuda", dtype=torch.bfloat16)
    torch.manual_seed(0)
    rows = []
    with torch.inference_mode():
        for name, d_in, d_out in [
            ("qkv", width, 3 * width),
            ("proj", width, width),
            ("fc1", width, mlp),
            ("fc2", mlp, width),
        ]:
            x = torch.randn(tokens, d_in, **bf16)
            w = torch.randn(d_out, d_in, **bf16) / d_in**0.5
            b = torch.zeros(d_out, **bf16)
            ms = cuda_ms(lambda x=x, w=w, b=b: F.linear(x, w, b), repeats)
            rows.append((f"linear {name} ({d_in}->{d_out})", ms, 2 * tokens * d_in * d_out))
            del x, w, b
        q, k, v = (
            torch.randn(batch, heads, TOKENS_PER_CLIP, width // heads, **bf16) for _ in "qkv"
        )
        attention = {}
        for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION):
            try:
                with sdpa_kernel([backend]):
                    attention[backend.name] = cuda_ms(
                        lambda: F.scaled_dot_product_attention(q, k, v), repeats
                    )
            except RuntimeError as exc:  # a backend may refuse these shapes
                print(f"attention {backend.name}: refused ({str(exc)[:100]})")
        flops = 4 * batch * TOKENS_PER_CLIP**2 * width
        if verbose:
            for name, ms in attention.items():
                print(f"  attention {name:16s} {ms / batch:7.3f} ms/clip/layer  "
                      f"{flops / ms / 1e9:6.0f} TFLOP/s")  # fmt: skip
        best = min(attention, key=attention.__getitem__)
        rows.append((f"attention ({best})", attention[best], flops))
    return sum(ms for _, ms, _ in rows) / batch * depth, rows


def main() -> None:
    from benchmarks.features import VIDEO_ARCHS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vitg", choices=sorted(VIDEO_ARCHS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--target-ms", type=float, default=50.0, help="ms per clip to compare")
    parser.add_argument(
        "--model", action="store_true",
        help="also time the whole random model's eager bf16 forward (video_kernels.py)",
    )  # fmt: skip
    args = parser.parse_args()
    arch = VIDEO_ARCHS[args.arch]
    width, depth, heads = (
        arch["hidden_size"],
        arch["num_hidden_layers"],
        arch["num_attention_heads"],
    )
    print(
        f"{args.arch}: width {width}, {depth} layers, {heads} heads, "
        f"MLP {int(width * arch['mlp_ratio'])}; {args.batch} clips x {TOKENS_PER_CLIP} tokens; "
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    )
    floor, rows = clip_floor(args.arch, args.batch, args.repeats, verbose=True)
    for name, ms, flop in rows:
        print(f"  {name:28s} {ms / args.batch:7.3f} ms/clip/layer  {flop / ms / 1e9:6.0f} TFLOP/s")
    print(f"floor: {floor:.1f} ms per clip ({depth} layers x {floor / depth:.3f} ms)")
    print(f"at most {1000 / floor / 2:.2f} s of video per second (2 clips per second)")
    print(f"target {args.target_ms:.0f} ms per clip: floor / target = {floor / args.target_ms:.2f}")
    if args.model:
        from benchmarks.video_kernels import build, features, timed

        model = build(args.arch).cuda().to(torch.bfloat16)
        pixels = torch.randn(args.batch, 64, 3, 256, 256, device="cuda", dtype=torch.bfloat16)
        whole, _ = timed(lambda p: features(model, p), pixels, 3)
        print(
            f"whole model, eager SDPA: {whole:.1f} ms per clip; floor / whole = {floor / whole:.2f}"
        )


if __name__ == "__main__":
    main()

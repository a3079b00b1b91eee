"""Bound on the text speed-up once the context window slides: same work, faster dtype (GPU).

Usage (GPU machine)::

    python3 benchmarks/text_floor.py --arch llama-3.2-3b --tokens 1300 5120

Past 1,024 words every word's context starts at a different word, so each
word needs a forward over its whole context, on the reference's path and on
ours alike (no two words share a forward and get the same outputs). The only
gains left are the dtype's and the batching's. This times, bare, the kernels
a Llama-type layer cannot do without (q, k, v, o, gate, up, down projections
and causal grouped-query attention) on random tensors of one context of
``--tokens`` tokens, in float32 with full-precision matmuls at the reference's
batch (4 contexts) and in float16 at ours (8), sums them over the layers and
prints the ratio: the most any implementation doing the same per-word work in
float16 can gain over the float32 reference on this GPU's kernels (norms,
rotary embedding, SiLU and residuals are left out of both).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cuda_timing import cuda_ms  # noqa: E402


def layer_ms_per_context(
    arch: dict, tokens: int, batch: int, dtype: torch.dtype, repeats: int
) -> dict[str, float]:
    """Milliseconds per context of each bare kernel of one layer."""
    width, mlp = arch["hidden_size"], arch["intermediate_size"]
    heads, kv_heads, head_dim = (
        arch["num_attention_heads"], arch["num_key_value_heads"], arch["head_dim"],
    )  # fmt: skip
    like = dict(device="cuda", dtype=dtype)
    out = {}
    for name, d_in, d_out in [
        ("q", width, heads * head_dim),
        ("k+v", width, 2 * kv_heads * head_dim),
        ("o", heads * head_dim, width),
        ("gate+up", width, 2 * mlp),
        ("down", mlp, width),
    ]:
        x = torch.randn(batch * tokens, d_in, **like)
        w = torch.randn(d_out, d_in, **like) / d_in**0.5
        out[name] = cuda_ms(lambda x=x, w=w: F.linear(x, w), repeats) / batch
    q = torch.randn(batch, heads, tokens, head_dim, **like)
    k, v = (torch.randn(batch, kv_heads, tokens, head_dim, **like) for _ in "kv")
    out["attention"] = (
        cuda_ms(
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
            repeats,
        )
        / batch
    )
    return out


def main() -> None:
    from benchmarks.features import TEXT_ARCHS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="llama-3.2-3b", choices=sorted(TEXT_ARCHS))
    parser.add_argument("--tokens", type=int, nargs="+", default=[1300, 5120])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    arch = TEXT_ARCHS[args.arch]
    torch.backends.cuda.matmul.allow_tf32 = False  # the reference's float32 matmuls
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    print(f"{args.arch}, {arch['num_hidden_layers']} layers; {torch.cuda.get_device_name()}, "
          f"torch {torch.__version__}")  # fmt: skip
    with torch.inference_mode():
        for tokens in args.tokens:
            ref = layer_ms_per_context(arch, tokens, 4, torch.float32, args.repeats)
            ours = layer_ms_per_context(arch, tokens, 8, torch.float16, args.repeats)
            print(f"context of {tokens} tokens (ms per context and layer: float32 batch 4 | "
                  "float16 batch 8)")  # fmt: skip
            for name in ref:
                gain = ref[name] / ours[name]
                print(f"  {name:10s} {ref[name]:8.3f} | {ours[name]:7.3f}   x{gain:5.1f}")
            depth = arch["num_hidden_layers"]
            total_ref, total_ours = sum(ref.values()) * depth, sum(ours.values()) * depth
            print(f"  per word: float32 {total_ref:.1f} ms, float16 {total_ours:.1f} ms; "
                  f"bound on the speed-up: x{total_ref / total_ours:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()

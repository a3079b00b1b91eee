"""Does fusing a text model's elementwise work pay in the sliding regime? Eager vs compiled (GPU).

Usage (GPU machine)::

    python3 benchmarks/text_compile.py --arch llama-3.2-3b --tokens 1229 --batch 8

Builds the full-size random text model in float16 on the GPU and times, side by
side in one run, one forward with every hidden state (as the features read it)
over ``--batch`` contexts of ``--tokens`` tokens, eager and under
``torch.compile`` (one fixed shape; compile time reported apart), with the
worst cosine between the two runs' token-mean hidden states. The float16
kernel floor of the same work is ``benchmarks/text_floor.py``'s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cuda_timing import cuda_ms  # noqa: E402


def main() -> None:
    from benchmarks.features import TEXT_ARCHS, _text_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="llama-3.2-3b", choices=sorted(TEXT_ARCHS))
    parser.add_argument("--tokens", type=int, default=1229)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda", help="timed with CUDA events")
    args = parser.parse_args()
    with torch.device(args.device):  # the features benchmark's model, built on the device
        model, _ = _text_model("full", args.arch)
    model = model.to(torch.float16)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.tokens), device=args.device)

    def states(net: torch.nn.Module) -> torch.Tensor:
        out = net(input_ids=ids, output_hidden_states=True).hidden_states
        return torch.stack([s.float().mean(dim=1) for s in out])

    print(f"{args.arch} float16, {args.batch} x {args.tokens} tokens; "
          f"{torch.cuda.get_device_name()}, torch {torch.__version__}")  # fmt: skip
    with torch.inference_mode():
        eager_ms = cuda_ms(lambda: states(model), args.repeats)
        eager = states(model)
        compiled = torch.compile(model)
        start = time.perf_counter()
        fused = states(compiled)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - start
        compiled_ms = cuda_ms(lambda: states(compiled), args.repeats)
    cosine = torch.nn.functional.cosine_similarity(eager, fused, dim=-1).min().item()
    for name, ms in (("eager", eager_ms), ("compiled", compiled_ms)):
        print(f"{name:9s}{ms:8.1f} ms per forward, {ms / args.batch:6.2f} ms per context")
    print(f"compiling took {compile_s:.0f} s; eager / compiled: {eager_ms / compiled_ms:.2f}; "
          f"min cosine eager vs compiled {cosine:.6f}")  # fmt: skip


if __name__ == "__main__":
    main()

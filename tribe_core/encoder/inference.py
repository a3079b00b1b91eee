"""Precision modes for inference: ``fp32`` (reference maths), ``tf32``, ``bf16``, ``fp16``.

- ``fp32``: the reference's arithmetic (explicit softmax attention, pooling after
  the subject layer), float32 everywhere; matches the reference to float32
  round-off.
- ``tf32``: float32 storage, TF32 tensor-core matmuls (CUDA), fused SDPA
  attention, pooling right after the transformer and the low-rank head folded
  into the subject layer (both linear, the pool an average: identical in exact
  arithmetic; the output heads cost a quarter of the reference's FLOPs), and
  q/k/v computed by one matmul.
- ``bf16``: as ``tf32`` but the transformer's attention and feed-forward
  weights are bfloat16 and their matmuls run in bfloat16 (flash attention);
  the residual stream, norms, rotary embedding and softmax statistics stay
  float32, and so do the modality projectors and the folded output head
  (TF32 on CUDA): they are a small share of the FLOPs, but rounding them (or
  the outputs) to bfloat16 costs ~1.6e-3 relative error each on full-size
  random weights. The transformer's bfloat16 weights alone cost ~1.4e-3
  (CPU emulation), so ``bf16`` lands near 2e-3, above a 1e-3 budget.
- ``fp16``: as ``bf16`` with float16 (same tensor-core speed, 3 more mantissa
  bits: ~3e-4 relative error). Safe here because every transformer matmul
  reads ScaleNorm output (``|x| <= sqrt(hidden) * g``) and the residual stream
  stays float32; :func:`tribe_core.segments.predict_stimulus` still checks the
  outputs are finite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from tribe_core.encoder.model import Attention, FeedForward, TribeEncoder

Precision = Literal["fp32", "tf32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16")
HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> None:
    """Raise ``ValueError`` for an unknown precision name."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


@contextlib.contextmanager
def precision_context(precision: str) -> Iterator[None]:
    """Set float32 matmul precision for the duration (TF32 for ``tf32``/``bf16``)."""
    check_precision(precision)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest" if precision == "fp32" else "high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def prepare_encoder(
    encoder: TribeEncoder,
    *,
    precision: str = "fp32",
    device: str | torch.device = "cpu",
    compile: bool | str = False,
    cached: bool = False,
) -> nn.Module:
    """Return a module ready for inference in ``precision`` on ``device``.

    ``encoder`` itself is returned for ``fp32`` when it already lives on
    ``device`` and ``compile`` is off; otherwise a copy is made, so the loaded
    float32 encoder is never altered.

    Parameters
    ----------
    encoder
        A loaded float32 encoder.
    precision
        ``"fp32"``, ``"tf32"``, ``"bf16"`` or ``"fp16"`` (see module docstring).
    device
        Target device.
    compile
        Wrap the result in ``torch.compile`` (first calls compile; every new
        batch size recompiles, so callers pad batches to a fixed size). A
        string is the compile ``mode``, e.g. ``"reduce-overhead"`` (CUDA
        graphs: removes kernel-launch overhead at small batches).
    cached
        Keep the result on ``encoder`` and return it for the same
        ``(precision, device, compile)`` later: a workflow predicting many
        stimuli copies (and compiles) once, not once per stimulus.
    """
    check_precision(precision)
    device = torch.device(device)
    key = (precision, str(device), compile)
    cache: dict[tuple[str, str, bool | str], nn.Module] | None = None
    if cached:
        cache = encoder.__dict__.setdefault("_prepared", {})
        if key in cache:
            return cache[key]
    model = _prepare(encoder, precision, device, compile)
    if cache is not None:
        cache[key] = model
    return model


def _prepare(
    encoder: TribeEncoder, precision: str, device: torch.device, compile: bool | str
) -> nn.Module:
    on_device = next(encoder.parameters()).device
    same_place = on_device.type == device.type and (
        device.index is None or on_device.index == device.index
    )
    if precision == "fp32" and same_place and not compile:
        return encoder
    model = _copy_to(encoder, device)
    model.set_exact_attention(precision == "fp32")
    if precision != "fp32":
        model.pool_first = True
        model.fuse_output_heads()
    if precision in HALF_DTYPES:
        for module in model.modules():
            if isinstance(module, (Attention, FeedForward)):
                module.to(HALF_DTYPES[precision])
    if precision != "fp32":
        for module in model.modules():
            if isinstance(module, Attention):
                module.fuse_qkv()
    model.eval().requires_grad_(False)
    if compile:
        mode = compile if isinstance(compile, str) else None
        return torch.compile(model, dynamic=False, mode=mode)  # type: ignore[return-value]
    return model


def _copy_to(encoder: TribeEncoder, device: torch.device) -> TribeEncoder:
    # A fresh module filled from the state dict: allocated on the target device
    # directly, and without the source's cache of prepared copies.
    with torch.device("meta"):
        model = TribeEncoder(encoder.arch, encoder.config)
    model = model.to_empty(device=device)
    model.load_state_dict(encoder.state_dict(), strict=True)
    model.set_exact_attention(True)
    return model

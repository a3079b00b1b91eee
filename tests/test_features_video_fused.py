"""Fused V-JEPA2 encoder (tribe_core.features.vjepa2_fused) against transformers' VJEPA2Model.

On the CPU the fused path runs eagerly (the same operations as on the GPU,
without ``torch.compile``); full-size GPU parity and speed are in
``benchmarks/video_fused.py``.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tribe_core.demo_models.video import build_tiny_vjepa2
from tribe_core.features import FeatureSpec, extract_video_features
from tribe_core.features.vjepa2_fused import (
    COMPILE_MIN_CLIPS,
    FusedVJEPA2Encoder,
    fused_encoder,
    last_state_is_normed,
    unsupported_reason,
)

TINY: dict[str, Any] = dict(
    patch_size=16, crop_size=32, frames_per_clip=64, tubelet_size=2, hidden_size=32,
    num_attention_heads=2, num_hidden_layers=3, mlp_ratio=2.0, pred_hidden_size=24,
    pred_num_attention_heads=2, pred_num_hidden_layers=1, pred_num_mask_tokens=2,
)  # fmt: skip


def _model(seed: int = 0, **changes: Any) -> torch.nn.Module:
    from transformers import VJEPA2Config, VJEPA2Model

    torch.manual_seed(seed)
    model = VJEPA2Model(VJEPA2Config(**{**TINY, **changes})).eval()
    with torch.no_grad():  # biases and norms away from their 0 / 1 start, so they count
        for name, param in model.named_parameters():
            if "bias" in name or "norm" in name:
                param.add_(torch.randn_like(param) * 0.3)
    return model


def _states(model: torch.nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        out = model(pixel_values_videos=pixels, output_hidden_states=True, skip_predictor=True)
    return out.hidden_states


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize(
    ("changes", "shape"),
    [
        ({}, (3, 64, 3, 32, 32)),  # the demo model: head 16, rotary sections of 4 + 4 passed
        ({"hidden_size": 24, "qkv_bias": False}, (2, 64, 3, 32, 32)),  # head 12: all rotated
        ({}, (2, 7, 3, 36, 40)),  # odd frames, sizes off the patch grid: cut as Conv3d does
        ({}, (2, 1, 3, 32, 32)),  # one frame: repeated to a tubelet, as transformers does
        ({"num_attention_heads": 1, "hidden_size": 48}, (2, 16, 3, 48, 32)),  # head 48
    ],
)
def test_hidden_states_equal_transformers_float32(changes: dict[str, Any], shape: tuple) -> None:
    model = _model(**changes)
    torch.manual_seed(1)
    pixels = torch.randn(*shape)
    ref = _states(model, pixels)
    encoder = FusedVJEPA2Encoder(model)
    encoder.plan(10**6)
    assert not encoder.compile  # eager on the CPU, however long the video
    with torch.no_grad():
        means, states = encoder.forward(pixels, keep_states=True)
    assert states is not None and len(states) == len(ref) == model.config.num_hidden_layers + 1
    for ours, theirs in zip(states, ref, strict=True):
        assert ours.shape == theirs.shape
        assert _rel(ours, theirs) < 1e-5
    ref_means = torch.stack([s.float().mean(dim=1) for s in ref])
    assert means.shape == ref_means.shape and _rel(means, ref_means) < 1e-5
    with torch.no_grad():
        assert torch.equal(encoder.state_means(pixels), means)
    # the last state is the final norm's output or the last block's, as transformers has it
    with torch.no_grad():
        last = model(pixel_values_videos=pixels, skip_predictor=True).last_hidden_state
    assert torch.equal(ref[-1], last) == last_state_is_normed()


def test_weights_are_referenced_not_copied() -> None:
    model = _model()
    pixels = torch.randn(2, 64, 3, 32, 32)
    before = _states(model, pixels)
    n_bytes = {
        p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()
    }
    encoder = FusedVJEPA2Encoder(model)
    after = {
        p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()
    }
    # q/k/v weights and biases now share one storage each per layer (3 -> 1, same bytes)
    assert sum(after.values()) == sum(n_bytes.values())
    assert len(after) == len(n_bytes) - 4 * model.config.num_hidden_layers
    for layer, block in zip(model.encoder.layer, encoder.blocks, strict=True):
        attn = layer.attention
        for lin in (attn.query, attn.key, attn.value):
            assert (
                lin.weight.untyped_storage().data_ptr() == block.qkv_w.untyped_storage().data_ptr()
            )
        assert block.fc1_w is layer.mlp.fc1.weight
    for a, b in zip(before, _states(model, pixels), strict=True):  # transformers unchanged
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    FusedVJEPA2Encoder(model)  # a second encoder reuses the joined storage
    assert {p.untyped_storage().data_ptr() for p in model.parameters()} == set(after)


def test_cast_model_is_bound_again_and_bf16_keeps_the_cosine_bar() -> None:
    model = _model()
    pixels = torch.randn(3, 64, 3, 32, 32)
    ref = torch.stack([s.mean(dim=1) for s in _states(model, pixels)])  # float32
    encoder = FusedVJEPA2Encoder(model)
    model.to(torch.bfloat16)  # new parameter storages: the encoder must follow
    with torch.no_grad():
        means = encoder.state_means(pixels.to(torch.bfloat16))
    assert encoder.blocks[0].qkv_w.dtype == torch.bfloat16
    cosine = F.cosine_similarity(means, ref, dim=-1)  # per state and clip (time step)
    assert cosine.min().item() >= 0.999


def test_rotary_tables_match_transformers_rotation() -> None:
    """The cached cos/sin tables rotate q exactly as ``apply_rotary_embeddings``."""
    from tribe_core.features.vjepa2_fused import _rope, rotary_tables

    attn = _model().encoder.layer[0].attention
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 2, 128, 16).to(dtype)  # [B, H, N, head]
        ids = attn.get_position_ids(x.transpose(1, 2).reshape(2, 128, 32))
        theirs = attn.apply_rotary_embeddings(x, ids)
        cos, sin = rotary_tables(attn, 128, dtype, torch.device("cpu"))  # [N, 1, 1, head]
        ours = _rope(x.transpose(1, 2), cos[:, 0], sin[:, 0]).transpose(1, 2)
        if dtype == torch.float32:
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        else:  # one rounding instead of three
            torch.testing.assert_close(ours, theirs, rtol=1.6e-2, atol=1e-2)


def test_modes_and_fallbacks(caplog: pytest.LogCaptureFixture) -> None:
    model = _model()
    assert fused_encoder(model, "off") is None
    assert fused_encoder(model, "auto") is None  # CPU: transformers' module
    on = fused_encoder(model, "on")
    assert isinstance(on, FusedVJEPA2Encoder) and fused_encoder(model, "on") is on
    with pytest.raises(ValueError, match="features.fused"):
        fused_encoder(model, "yes")
    other = _model(hidden_act="gelu_new")
    assert "hidden_act" in str(unsupported_reason(other))
    with caplog.at_level("WARNING", logger="tribe_core.features.vjepa2_fused"):
        assert fused_encoder(other, "on") is None
    assert "not the fused path" in caplog.text
    assert fused_encoder(torch.nn.Linear(2, 2), "on") is None
    training = _model().train()
    assert unsupported_reason(training) == "the model is in training mode"
    with pytest.raises(ValueError, match="does not support"):
        FusedVJEPA2Encoder(training)


def _with_fused(spec: FeatureSpec, mode: str) -> FeatureSpec:
    """``spec`` with ``fused = mode`` (config ``features.fused``)."""
    return dataclasses.replace(spec, fused=mode)


def test_extractor_output_fused_on_equals_off(tmp_path: Path) -> None:
    model = build_tiny_vjepa2(tmp_path / "tiny-vjepa2")
    video = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=16",
         "-t", "2.5", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(video)],
        check=True,
    )  # fmt: skip
    spec = FeatureSpec("video", str(model), batch_size=3, layers=(0.0, 0.5, 1.0))
    off = extract_video_features(video, _with_fused(spec, "off"), 2.5)
    on = extract_video_features(video, _with_fused(spec, "on"), 2.5)
    assert off.shape == on.shape == (2, 32, 5) and np.abs(off).sum(axis=(0, 1)).min() > 0
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-6)
    sub = dataclasses.replace(spec, cache_n_layers=3)  # a subset of the states, as the reference
    np.testing.assert_allclose(
        extract_video_features(video, _with_fused(sub, "on"), 2.5),
        extract_video_features(video, _with_fused(sub, "off"), 2.5),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_on_cuda_pads_batches_and_matches() -> None:
    model = _model().cuda()
    pixels = torch.randn(4, 64, 3, 32, 32, device="cuda")
    ref = torch.stack([s.mean(dim=1) for s in _states(model, pixels)])
    short = FusedVJEPA2Encoder(model)
    short.plan(COMPILE_MIN_CLIPS - 1)  # a short video: eager, no compile to pay for
    assert not short.compile
    short.plan(COMPILE_MIN_CLIPS)
    assert short.compile
    for graph in (False, True):
        encoder = FusedVJEPA2Encoder(model, cuda_graph=graph)
        assert encoder.compile
        with torch.no_grad():
            full = encoder.state_means(pixels)
            part = encoder.state_means(pixels[:3])  # padded up to the compiled batch of 4
        assert part.shape[1] == 3
        torch.testing.assert_close(full, ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(part, ref[:, :3], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("mlp_options", [None, {"fc2": {}}], ids=["one graph", "three graphs"])
def test_compiled_blocks_equal_transformers(mlp_options: dict | None) -> None:
    """Compiled on the CPU: each block one graph, or (``mlp_options``) attention half,
    fc1 + GELU and fc2 + residual as three graphs."""
    model = _model()
    pixels = torch.randn(2, 64, 3, 32, 32)
    ref = torch.stack([s.mean(dim=1) for s in _states(model, pixels)])
    encoder = FusedVJEPA2Encoder(model, compile=True, compile_options={}, mlp_options=mlp_options)
    with torch.no_grad():
        means = encoder.state_means(pixels)
    assert means.shape == ref.shape
    torch.testing.assert_close(means, ref, rtol=1e-4, atol=1e-5)

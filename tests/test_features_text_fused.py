"""Fused Llama / Qwen3 decoder (tribe_core.features.llama_fused) against transformers' modules.

On the CPU the fused path runs eagerly (the same operations as on the GPU,
without ``torch.compile``); full-size GPU parity and speed are in
``benchmarks/text_fused.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tribe_core.demo_models.text import build_tiny_llama, build_tiny_qwen3
from tribe_core.features import FeatureSpec
from tribe_core.features.llama_fused import (
    COMPILE_MIN_FORWARDS,
    FusedCausalLM,
    fused_text_model,
    last_state_is_normed,
    unsupported_reason,
)
from tribe_core.features.text import _states_used, load_text_model, word_vectors

SENTENCES = [
    "Hello world, this is a short test of speech.",
    "The quick brown fox jumps over the lazy dog!",
    "Why do we remember some words?",
    "Because meaning matters more than sound, said the cat on the mat.",
]
LLAMA3_ROPE = {
    "rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}  # fmt: skip


def _model(name: str, seed: int = 0, **changes: Any) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaModel, Qwen3Config, Qwen3Model

    if name == "llama":
        dims = dict(
            vocab_size=120, hidden_size=32, intermediate_size=64, num_hidden_layers=5,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        )  # fmt: skip
        config: Any = LlamaConfig(**{**dims, **changes})
        if isinstance(getattr(config, "rope_parameters", None), dict):  # transformers 5
            config.rope_parameters = {**LLAMA3_ROPE, "rope_theta": 500000.0}
        else:
            config.rope_scaling, config.rope_theta = LLAMA3_ROPE, 500000.0
        cls: Any = LlamaModel
    else:
        dims = dict(
            vocab_size=120, hidden_size=24, intermediate_size=48, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
        )  # fmt: skip
        config = Qwen3Config(**{**dims, **changes})
        cls = Qwen3Model
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():  # norms and biases away from their 1 / 0 start, so they count
        for pname, param in model.named_parameters():
            if "norm" in pname or "bias" in pname:
                param.add_(torch.randn_like(param) * 0.3)
    return model


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def _spans(lengths: list[int], width: int) -> list[tuple[int, int, int]]:
    """``(row, start, stop)`` word spans: each row's last 1-3 tokens, and one inside row 0."""
    spans = [(r, max(0, n - 1 - r % 3), n) for r, n in enumerate(lengths)]
    return [*spans, (0, 2, 5)]


def _gather(spans: list[tuple[int, int, int]], width: int) -> tuple[torch.Tensor, ...]:
    positions = torch.tensor([r * width + t for r, a, b in spans for t in range(a, b)])
    owners = torch.tensor([k for k, (_, a, b) in enumerate(spans) for _ in range(a, b)])
    counts = torch.tensor([float(b - a) for _, a, b in spans])
    return positions, owners, counts


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("llama", {}),  # llama3 rope scaling, grouped k/v heads
        ("llama", {"attention_bias": True, "mlp_bias": True, "num_key_value_heads": 4}),
        ("qwen3", {}),  # per-head q/k norms
    ],
)
def test_word_means_equal_transformers_float32(name: str, changes: dict[str, Any]) -> None:
    model = _model(name, **changes)
    lengths, width = [21, 14, 9, 21], 21
    torch.manual_seed(1)
    ids = torch.randint(0, 120, (len(lengths), width))
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    fused = FusedCausalLM(model)
    fused.plan(10**6)
    assert not fused.compile  # eager on the CPU, however many forwards
    spans = _spans(lengths, width)
    n_states = model.config.num_hidden_layers + 1
    assert len(ref) == n_states
    for states in (list(range(n_states)), [n_states - 1], [0, 2], [1, 3]):
        with torch.no_grad():
            means = fused.word_means(ids, *_gather(spans, width), states)
        assert means.shape == (len(states), len(spans), model.config.hidden_size)
        assert means.dtype == torch.float32
        for k, s in enumerate(states):
            expected = torch.stack([ref[s][r, a:b].mean(dim=0) for r, a, b in spans])
            assert _rel(means[k], expected) < 1e-5, (states, s)
    # the last state is the final norm's output or the last layer's, as transformers has it
    with torch.no_grad():
        last = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(ref[-1], last) == last_state_is_normed(model)


def test_weights_are_referenced_not_copied() -> None:
    model = _model("llama")
    ids = torch.randint(0, 120, (2, 12))
    with torch.no_grad():
        before = model(input_ids=ids, output_hidden_states=True).hidden_states

    def storages() -> dict[int, int]:
        return {
            p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()
        }

    n_bytes = storages()
    fused = FusedCausalLM(model)
    after = storages()
    # per layer q/k/v (3 -> 1) and gate/up (2 -> 1) share one storage each, same bytes
    assert sum(after.values()) == sum(n_bytes.values())
    assert len(after) == len(n_bytes) - 3 * model.config.num_hidden_layers
    for layer, ours in zip(model.layers, fused.layers, strict=True):
        joined = ours.qkv_w.untyped_storage().data_ptr()
        attn = layer.self_attn
        assert {lin.weight.untyped_storage().data_ptr() for lin in (
            attn.q_proj, attn.k_proj, attn.v_proj)} == {joined}  # fmt: skip
        assert ours.down_w is layer.mlp.down_proj.weight
    with torch.no_grad():
        after_states = model(input_ids=ids, output_hidden_states=True).hidden_states
        for a, b in zip(before, after_states, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)  # transformers unchanged
    FusedCausalLM(model)  # a second decoder reuses the joined storages
    assert set(storages()) == set(after)


def test_cast_model_is_bound_again_and_bf16_keeps_the_cosine_bar() -> None:
    model = _model("qwen3")
    ids = torch.randint(0, 120, (3, 16))
    spans = _spans([16, 16, 16], 16)
    fused = FusedCausalLM(model)
    with torch.no_grad():
        ref = fused.word_means(ids, *_gather(spans, 16), range(4))
        model.to(torch.bfloat16)  # new parameter storages: the decoder must follow
        half = fused.word_means(ids, *_gather(spans, 16), range(4))
    assert fused.layers[0].qkv_w.dtype == torch.bfloat16
    assert F.cosine_similarity(half, ref, dim=-1).min().item() >= 0.999


def test_modes_and_fallbacks(caplog: pytest.LogCaptureFixture) -> None:
    model = _model("llama")
    assert fused_text_model(model, "off") is None
    assert fused_text_model(model, False) is None
    assert fused_text_model(model, "auto") is None  # CPU: transformers' module
    on = fused_text_model(model, "on")
    assert isinstance(on, FusedCausalLM) and fused_text_model(model, True) is on
    with pytest.raises(ValueError, match="features.fused"):
        fused_text_model(model, "yes")
    other = _model("llama", hidden_act="gelu")
    assert "hidden_act" in str(unsupported_reason(other))
    with caplog.at_level("WARNING", logger="tribe_core.features.llama_fused"):
        assert fused_text_model(other, "on") is None
    assert "not the fused path" in caplog.text
    assert fused_text_model(torch.nn.Linear(2, 2), "on") is None
    sliding = _model("qwen3", use_sliding_window=True, sliding_window=8, max_window_layers=0)
    assert "sliding" in str(unsupported_reason(sliding))
    training = _model("llama").train()
    assert unsupported_reason(training) == "the model is in training mode"
    with pytest.raises(ValueError, match="does not support"):
        FusedCausalLM(training)


def test_states_used_are_the_ones_the_layer_groups_read() -> None:
    spec = FeatureSpec("text", "m", layers=(0.5, 0.75, 1.0), layer_aggregation="group_mean")
    keep, used = _states_used(29, spec)
    assert keep == list(range(29)) and used == list(range(14, 29))
    mean = dataclasses.replace(spec, layers=(0.25, 0.5), layer_aggregation="mean")
    assert _states_used(29, mean)[1] == [7, 14]  # the forward stops after layer 14
    sub = dataclasses.replace(spec, layers=(0.0, 0.5), cache_n_layers=5)
    keep, used = _states_used(29, sub)
    assert keep == [0, 7, 14, 21, 28] and used == [0, 7, 14]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text_models")
    return {"llama": build_tiny_llama(root / "llama"), "qwen3": build_tiny_qwen3(root / "qwen3")}


def _with_fused(spec: FeatureSpec, mode: str) -> FeatureSpec:
    """``spec`` with ``fused = mode`` (config ``features.fused``)."""
    return dataclasses.replace(spec, fused=mode)


def _sliding_words(window: int, repeats: int = 2) -> tuple[list[str], list[str]]:
    words = [w.strip(",.!?") for w in " ".join(SENTENCES * repeats).split()]
    contexts = [" ".join(words[max(0, i - window + 1) : i + 1]) for i in range(len(words))]
    return words, contexts


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("llama", dict(layers=(0.5, 0.75, 1.0), batch_size=3)),  # growing, then sliding
        ("llama", dict(layers=(0.0, 0.25, 0.5), cache_n_layers=4, batch_size=4)),  # stops early
        ("llama", dict(layers=(0.5, 1.0), batch_size=2, context_stride=4)),  # merged windows
        ("qwen3", dict(layers=2 / 3, layer_aggregation="mean", batch_size=5)),
        ("qwen3", dict(layers="all", layer_aggregation=None, batch_size=3, contextualized=False)),
    ],
)
def test_word_vectors_fused_on_equal_off(
    models: dict[str, Path], name: str, settings: dict[str, Any]
) -> None:
    spec = FeatureSpec("text", str(models[name]), **settings)
    model, tokenizer = load_text_model(spec)
    words, contexts = _sliding_words(12)
    if not spec.contextualized:
        contexts = words
    off = word_vectors(model, tokenizer, words, contexts, _with_fused(spec, "off"))
    on = word_vectors(model, tokenizer, words, contexts, _with_fused(spec, "on"))
    assert on.shape == off.shape and on.dtype == np.float32
    assert off.shape[:2] == (len(words), spec.n_layer_groups(model.config.num_hidden_layers + 1))
    assert np.abs(off).max() > 0.05
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-5 * np.abs(off).max())
    if spec.context_stride == 1:  # one context per word, fused: the same vectors
        single = word_vectors(model, tokenizer, words, contexts, _with_fused(spec, "on"), False)
        np.testing.assert_allclose(single, off, rtol=1e-4, atol=1e-4 * np.abs(off).max())


def test_nan_is_reported_by_the_fused_path(models: dict[str, Path]) -> None:
    from tribe_core.errors import TribeInputError

    spec = _with_fused(FeatureSpec("text", str(models["llama"]), batch_size=2), "on")
    model, tokenizer = load_text_model(spec)
    with torch.no_grad():
        model.layers[-1].mlp.down_proj.weight.fill_(float("nan"))
    words, contexts = _sliding_words(4, 1)
    with pytest.raises(TribeInputError, match="NaN"):
        word_vectors(model, tokenizer, words, contexts, spec)


@pytest.mark.slow
def test_compiled_on_cpu_equals_eager() -> None:
    """The compiled halves (Inductor's C++ backend here) give the eager path's means."""
    model = _model("qwen3")
    compiled, eager = FusedCausalLM(model, compile=True), FusedCausalLM(model, compile=False)
    for batch, width in [(3, 17), (2, 23), (3, 9)]:  # one compile serves every shape
        ids = torch.randint(0, 120, (batch, width))
        spans = _spans([width] * batch, width)
        with torch.no_grad():
            a = compiled.word_means(ids, *_gather(spans, width), range(4))
            b = eager.word_means(ids, *_gather(spans, width), range(4))
        assert _rel(a, b) < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_on_cuda_matches_transformers(models: dict[str, Path]) -> None:
    model = _model("llama").cuda()
    fused = FusedCausalLM(model)
    fused.plan(COMPILE_MIN_FORWARDS - 1)  # a short stimulus: eager, no compile to pay for
    assert not fused.compile
    fused.plan(COMPILE_MIN_FORWARDS)
    assert fused.compile
    for dtype, tol in ((torch.float32, 1e-4), (torch.float16, 5e-3)):
        model.to(dtype)
        for lengths in ([40, 33, 27], [18, 18]):  # two widths and batch sizes, one compile
            width = max(lengths)
            ids = torch.randint(0, 120, (len(lengths), width), device="cuda")
            mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long().cuda()
            spans = _spans(lengths, width)
            with torch.no_grad():
                ref = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                means = fused.word_means(ids, *(t.cuda() for t in _gather(spans, width)), range(6))
            expected = torch.stack(
                [torch.stack([s[r, a:b].float().mean(0) for r, a, b in spans])
                 for s in ref.hidden_states]
            )  # fmt: skip
            assert _rel(means, expected) < tol, dtype
    spec = _with_fused(
        FeatureSpec("text", str(models["llama"]), device="cuda", dtype="float16", batch_size=3),
        "on",
    )
    net, tokenizer = load_text_model(spec)
    words, contexts = _sliding_words(12)
    on = word_vectors(net, tokenizer, words, contexts, spec)
    off = word_vectors(net, tokenizer, words, contexts, _with_fused(spec, "off"))
    np.testing.assert_allclose(on, off, rtol=5e-3, atol=5e-3 * np.abs(off).max())


def test_read_ahead_keeps_order_raises_and_stops() -> None:
    import threading

    from tribe_core.features.text import _read_ahead

    assert list(_read_ahead(iter(range(10)), 2)) == list(range(10))

    def failing():  # noqa: ANN202
        yield 1
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        list(_read_ahead(failing(), 2))
    endless = _read_ahead(iter(range(10**9)), 2)
    assert next(endless) == 0
    endless.close()  # the thread stops instead of filling the queue forever
    for thread in threading.enumerate():
        if thread.name == "text-batches":
            thread.join(timeout=2)
            assert not thread.is_alive()

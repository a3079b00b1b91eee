"""Text features on tiny random Llama / Qwen3 models, equal to neuralset 0.0.2's HuggingFaceText."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tribe_core.demo_models.text import build_tiny_llama, build_tiny_qwen3
from tribe_core.errors import TribeConfigError
from tribe_core.features import FeatureSpec, extract_text_features, hidden_state_shape
from tribe_core.features.text import load_text_model

SENTENCES = [
    "Hello world, this is a short test of speech.",
    "The quick brown fox jumps over the lazy dog!",
    "Why do we remember some words?",
]
DURATION_S = 8.0


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text_models")
    return {"llama": build_tiny_llama(root / "llama"), "qwen3": build_tiny_qwen3(root / "qwen3")}


def _words() -> pd.DataFrame:
    """Word rows with sentences and contexts built like the reference's AddContextToWords."""
    rows, t, past = [], 0.1, ""
    for sentence in SENTENCES:
        pos, start_char = 0, 0
        for token in sentence.split():
            word = token.strip(",.!?")
            char = sentence.index(word, pos)
            pos = char + len(word)
            past += sentence[start_char:pos]
            start_char = pos
            rows.append(
                {
                    "type": "Word",
                    "start": round(t, 3),
                    "duration": 0.27,
                    "text": word,
                    "sentence": sentence,
                    "sentence_char": char,
                    "context": past,
                    "language": "english",
                }
            )
            t += 0.31
        past += sentence[start_char:]
    return pd.DataFrame(rows)


def _reference(model: Path, spec: FeatureSpec, words: pd.DataFrame) -> np.ndarray:
    base = pytest.importorskip("neuralset.extractors.base")
    text_mod = pytest.importorskip("neuralset.extractors.text")
    utils = pytest.importorskip("neuralset.events.utils")
    # the oracle checks hub ids against a list or the network; the model is local
    base.HuggingFaceMixin.repo_exists = lambda self: True
    layers = list(spec.layers) if isinstance(spec.layers, tuple) else spec.layers
    extractor = text_mod.HuggingFaceText(
        model_name=str(model),
        layers=layers,
        layer_aggregation=spec.layer_aggregation,
        cache_n_layers=spec.cache_n_layers,
        batch_size=4,
        frequency=2.0,
        aggregation="sum",
        device="cpu",
    )
    events = utils.standardize_events(words.assign(timeline="t", subject="s"))
    window = spec.segment_s or DURATION_S  # the reference's inference segments
    pieces = []
    for k in range(int(np.ceil(DURATION_S / window))):
        piece = extractor(events, start=k * window, duration=window).numpy()
        pieces.append(piece if piece.ndim == 3 else piece[None])
    return np.concatenate(pieces, axis=-1)[..., : int(DURATION_S * 2)]


@pytest.mark.parametrize(
    ("name", "layers", "aggregation", "cache_n", "segment_s"),
    [
        ("llama", (0.5, 0.75, 1.0), "group_mean", None, None),
        ("llama", (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), "group_mean", 4, 2.0),
        ("qwen3", 2 / 3, "mean", None, 2.0),
    ],
)
def test_equals_neuralset(
    models: dict[str, Path], name: str, layers, aggregation: str, cache_n, segment_s
) -> None:  # noqa: ANN001
    spec = FeatureSpec(
        "text",
        str(models[name]),
        layers=layers,
        layer_aggregation=aggregation,
        cache_n_layers=cache_n,
        segment_s=segment_s,
    )
    words = _words()
    ours = extract_text_features(words, spec, DURATION_S)
    ref = _reference(models[name], spec, words)
    n_states, hidden = hidden_state_shape(models[name])
    assert ours.shape == (spec.n_layer_groups(n_states), hidden, 16) == ref.shape
    assert ours.dtype == np.float32
    assert np.abs(ref).max() > 0.05
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_batching_and_word_placement(models: dict[str, Path]) -> None:
    spec = FeatureSpec("text", str(models["llama"]), batch_size=1)
    words = _words()
    one = extract_text_features(words, spec, DURATION_S)
    many = extract_text_features(words, dataclasses.replace(spec, batch_size=7), DURATION_S)
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-5)
    # steps without any word stay zero; a step holding two words is their sum
    starts = words["start"].to_numpy()
    steps = set(np.round(starts * 2).astype(int))
    empty = [k for k in range(16) if k not in steps]
    assert empty and np.all(one[..., empty] == 0)
    assert np.all(np.abs(one[..., sorted(steps)]).sum(axis=(0, 1)) > 0)


def test_no_words_and_missing_contexts(models: dict[str, Path]) -> None:
    spec = FeatureSpec("text", str(models["llama"]))
    audio_only = pd.DataFrame(
        [{"type": "Audio", "start": 0.0, "duration": 3.0, "text": "", "context": ""}]
    )
    assert extract_text_features(audio_only, spec, 3.0) is None
    words = _words()
    words.loc[0, "context"] = ""  # an unmatched word is dropped, as RemoveMissing does
    dropped = extract_text_features(words, spec, DURATION_S)
    full = extract_text_features(_words(), spec, DURATION_S)
    first = int(round(words.loc[0, "start"] * 2))
    assert np.all(dropped[..., first] == 0) and np.any(full[..., first] != 0)
    np.testing.assert_allclose(dropped[..., 2:], full[..., 2:], rtol=1e-4, atol=1e-5)


def test_layout_mismatch_is_refused(models: dict[str, Path]) -> None:
    spec = FeatureSpec("text", str(models["qwen3"]), expected_dims=(2, 3072))
    with pytest.raises(TribeConfigError, match=r"text.*\(2, 3072\).*\(2, 24\)"):
        load_text_model(spec)


def test_bfloat16_close_to_float32(models: dict[str, Path]) -> None:
    spec = FeatureSpec("text", str(models["llama"]))
    words = _words()
    ref = extract_text_features(words, spec, DURATION_S)
    bf16 = extract_text_features(words, dataclasses.replace(spec, dtype="bfloat16"), DURATION_S)
    assert bf16.dtype == np.float32
    a, b = ref.reshape(-1, ref.shape[-1]), bf16.reshape(-1, ref.shape[-1])
    keep = np.linalg.norm(a, axis=0) > 0
    cos = (a * b).sum(0)[keep] / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))[keep]
    assert cos.min() > 0.99


def test_shared_contexts_equal_one_forward_per_word(models: dict[str, Path]) -> None:
    """Past the context window, contexts slide and every word needs its own forward."""
    from tribe_core.features.text import plan_shared_contexts, word_vectors

    spec = FeatureSpec("text", str(models["llama"]), batch_size=3)
    model, tokenizer = load_text_model(spec)
    words = " ".join(SENTENCES).replace(",", "").replace(".", "").replace("!", "").split()
    window = 6
    contexts = [" ".join(words[max(0, i - window + 1) : i + 1]) for i in range(len(words))]
    ids = tokenizer(contexts, add_special_tokens=False)["input_ids"]
    groups = plan_shared_contexts(ids)
    assert groups[0] == list(range(window))  # growing contexts share one forward
    assert all(len(g) == 1 for g in groups[1:])  # then the window slides
    shared = word_vectors(model, tokenizer, words, contexts, spec)
    single = word_vectors(model, tokenizer, words, contexts, spec, share_contexts=False)
    assert shared.shape == (len(words), 2, 32)
    np.testing.assert_allclose(shared, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["llama", "qwen3"])
def test_padded_batches_equal_one_row_per_forward(models: dict[str, Path], name: str) -> None:
    """Sliding contexts of different lengths batched with padding read the same vectors."""
    from tribe_core.features.text import word_vectors

    spec = FeatureSpec("text", str(models[name]), batch_size=4)
    model, tokenizer = load_text_model(spec)
    words = " ".join(SENTENCES).replace(",", "").split()
    contexts = [" ".join(words[max(0, i - 5) : i + 1]) for i in range(len(words))]
    lengths = [len(x) for x in tokenizer(contexts, add_special_tokens=False)["input_ids"]]
    assert len(set(lengths[6:10])) > 1  # a batch of sliding contexts is really padded
    batched = word_vectors(model, tokenizer, words, contexts, spec)
    single = word_vectors(
        model, tokenizer, words, contexts, dataclasses.replace(spec, batch_size=1),
        share_contexts=False,
    )  # fmt: skip
    assert np.abs(single).max() > 0.05
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def test_word_shards_sum_to_whole(models: dict[str, Path]) -> None:
    spec = FeatureSpec("text", str(models["llama"]))
    words = _words()
    whole = extract_text_features(words, spec, DURATION_S)
    parts = [
        extract_text_features(words, spec, DURATION_S, word_slice=slice(a, b))
        for a, b in [(0, 9), (9, None)]
    ]
    assert not np.allclose(parts[0], whole) and not np.allclose(parts[1], whole)
    np.testing.assert_allclose(parts[0] + parts[1], whole, rtol=1e-4, atol=1e-5)
    assert extract_text_features(words, spec, DURATION_S, word_slice=slice(100, None)) is None


def _sliding(words: list[str], window: int) -> list[str]:
    return [" ".join(words[max(0, i - window + 1) : i + 1]) for i in range(len(words))]


def test_context_stride_reads_words_in_a_later_context(models: dict[str, Path]) -> None:
    """Stride S: a word is read in the context of a word at most S - 1 later, fewer forwards."""
    from tribe_core.features.text import _planned_rows, word_vectors

    stride, window = 4, 20
    spec = FeatureSpec("text", str(models["llama"]), batch_size=3, context_stride=stride)
    model, tokenizer = load_text_model(spec)
    words = (" ".join(SENTENCES) + " " + " ".join(reversed(SENTENCES))).split() * 2
    words = [w.strip(",.!?") for w in words]
    contexts = _sliding(words, window)
    exact_rows = list(_planned_rows(tokenizer, words, contexts, dataclasses.replace(
        spec, context_stride=1), share=True))  # fmt: skip
    rows = list(_planned_rows(tokenizer, words, contexts, spec, share=True))
    assert len(exact_rows) == len(words) - window + 1  # one growing group, then one per word
    assert len(rows) <= 1 + -(-(len(words) - window) // stride) + 1
    assert sorted(i for _, members in rows for i, _, _ in members) == list(range(len(words)))

    strided = word_vectors(model, tokenizer, words, contexts, spec)
    exact = word_vectors(model, tokenizer, words, contexts, spec, share_contexts=False)
    np.testing.assert_allclose(strided[:window], exact[:window], rtol=1e-4, atol=1e-5)
    dropped_counts = []
    for i in range(window, len(words)):
        # the same word with 0..S-1 of its earliest context words dropped
        candidates = [" ".join(words[i - window + 1 + d : i + 1]) for d in range(stride)]
        options = word_vectors(model, tokenizer, [words[i]] * stride, candidates, spec, False)
        errors = np.abs(options - strided[i]).reshape(stride, -1).max(axis=1)
        assert errors.min() < 1e-4, (i, errors)
        dropped_counts.append(int(errors.argmin()))
    assert max(dropped_counts) > 0  # some words were read in a later context
    assert not np.allclose(strided, exact, atol=1e-5)


def test_context_stride_keeps_own_forward_for_words_it_cannot_place(
    models: dict[str, Path],
) -> None:
    """A word whose context is not a window of the same text gets its own (exact) forward."""
    from tribe_core.features.text import word_vectors

    spec = FeatureSpec("text", str(models["llama"]), batch_size=2, context_stride=8)
    model, tokenizer = load_text_model(spec)
    words = [w.strip(",.!?") for w in " ".join(SENTENCES * 3).split()]
    contexts = _sliding(words, 16)
    odd = 20
    contexts[odd] = "an unrelated preamble that no other context contains " + words[odd]
    strided = word_vectors(model, tokenizer, words, contexts, spec)
    exact = word_vectors(model, tokenizer, words, contexts, spec, share_contexts=False)
    np.testing.assert_allclose(strided[odd], exact[odd], rtol=1e-4, atol=1e-5)
    assert strided.shape == exact.shape


def test_context_stride_is_validated_and_recorded(models: dict[str, Path]) -> None:
    from tribe_core.features import feature_store_attrs

    with pytest.raises(TribeConfigError, match="context_stride"):
        FeatureSpec("text", str(models["llama"]), context_stride=0)
    plain = FeatureSpec("text", str(models["llama"]))
    assert "context_stride" not in feature_store_attrs(plain, 10.0)
    strided = dataclasses.replace(plain, context_stride=16)
    assert feature_store_attrs(strided, 10.0)["context_stride"] == 16


def test_bf16_weights_loaded_as_float16_equal_transformers_own_cast(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """Read as stored, cast after the move: same parameters and states as casting on load."""
    import shutil

    import torch
    from transformers import AutoModel

    from tribe_core.features._hf import _load_dtype, load_model

    stored = tmp_path / "bf16"
    AutoModel.from_pretrained(models["llama"]).to(torch.bfloat16).save_pretrained(stored)
    for f in models["llama"].iterdir():
        if "token" in f.name:
            shutil.copy(f, stored)
    spec = FeatureSpec("text", str(stored), dtype="float16")
    assert _load_dtype(spec) == torch.bfloat16
    assert _load_dtype(dataclasses.replace(spec, dtype="bfloat16")) == torch.bfloat16
    assert _load_dtype(dataclasses.replace(spec, dtype="float32")) == torch.float32
    ours = load_model(spec)
    theirs = AutoModel.from_pretrained(stored, dtype=torch.float16).eval()
    assert {p.dtype for p in ours.parameters()} == {torch.float16}
    ids = torch.randint(0, 100, (2, 24))
    with torch.no_grad():
        a = ours(input_ids=ids, output_hidden_states=True).hidden_states
        b = theirs(input_ids=ids, output_hidden_states=True).hidden_states
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)

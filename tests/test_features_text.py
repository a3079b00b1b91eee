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

"""Feature settings from a checkpoint's config.yaml, their check, and store staleness."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from tribe_core.demo_models.tribe import data_config_for
from tribe_core.errors import TribeConfigError
from tribe_core.features import (
    FeatureSpec,
    check_spec_against_dims,
    feature_specs_from_config,
    feature_store_attrs,
)
from tribe_core.io.zarr_store import store_matches, write_feature_store

# The data section of the released config.yaml, as far as features go (neuralset field names).
RELEASED = {
    "data": {
        "frequency": 2.0,
        "layers_to_use": [0.5, 0.75, 1.0],
        "n_layers_to_use": None,
        "layer_aggregation": "group_mean",
        "features_to_use": ["text", "audio", "video"],
        "duration_trs": 100,
        "neuro": {"name": "FmriExtractor", "frequency": 1, "offset": 5},
        "text_feature": {
            "name": "HuggingFaceText",
            "model_name": "meta-llama/Llama-3.2-3B",
            "layers": [0, 0.2, 0.4, 0.6, 0.8, 1.0],
            "cache_n_layers": 20,
            "token_aggregation": "mean",
            "layer_aggregation": "group_mean",
            "contextualized": True,
            "batch_size": 4,
            "frequency": 2.0,
        },
        "audio_feature": {
            "name": "Wav2VecBert",
            "model_name": "facebook/w2v-bert-2.0",
            "layers": [0.75, 1.0],
            "cache_n_layers": 20,
            "frequency": 2.0,
            "norm_audio": True,
        },
        "video_feature": {
            "name": "HuggingFaceVideo",
            "frequency": 2.0,
            "clip_duration": 4,
            "num_frames": None,
            "image": {
                "name": "HuggingFaceImage",
                "model_name": "facebook/vjepa2-vitg-fpc64-256",
                "layers": [0.75, 1.0],
                "cache_n_layers": 20,
            },
        },
    }
}
RELEASED_DIMS = {"text": (2, 3072), "audio": (2, 1024), "video": (2, 1408)}


def _mini() -> dict:
    config = copy.deepcopy(RELEASED)
    data = config["data"]
    data.update(layers_to_use=None, layer_aggregation="mean")
    data["text_feature"].update(model_name="Qwen/Qwen3-0.6B", layers=2 / 3)
    data["video_feature"]["image"].update(model_name="facebook/vjepa2-vitl-fpc64-256", layers=2 / 3)
    data["audio_feature"].update(layers=2 / 3)
    return config


def test_released_config() -> None:
    specs = feature_specs_from_config(RELEASED, RELEASED_DIMS)
    assert list(specs) == ["text", "audio", "video"]
    text, audio, video = specs["text"], specs["audio"], specs["video"]
    assert text.model == "meta-llama/Llama-3.2-3B"
    assert text.layers == (0.5, 0.75, 1.0)  # data.layers_to_use wins over the extractor's
    assert text.layer_aggregation == "group_mean"
    assert (text.cache_n_layers, text.batch_size, text.frequency_hz) == (20, 4, 2.0)
    assert text.segment_s == 100.0  # the reference's 100-TR inference segments
    assert video.model == "facebook/vjepa2-vitg-fpc64-256"
    assert (video.clip_duration_s, video.n_frames) == (4.0, 64)
    assert audio.layer_subselection is None and text.layer_subselection == 20
    # Llama-3.2-3B: 28 blocks + embeddings; ViT-G: 40 + 1; w2v-BERT: 24 + 1
    assert check_spec_against_dims(text, 29, 3072) == (2, 3072)
    assert check_spec_against_dims(video, 41, 1408) == (2, 1408)
    assert check_spec_against_dims(audio, 25, 1024) == (2, 1024)


def test_mini_config_and_overrides() -> None:
    dims = {"text": (1, 1024), "audio": (1, 1024), "video": (1, 1024)}
    overrides = {"text": {"model": "/models/qwen3", "device": "cuda", "dtype": "bfloat16"}}
    specs = feature_specs_from_config(_mini(), dims, overrides)
    text = specs["text"]
    assert text.model == "/models/qwen3" and text.dtype == "bfloat16" and text.device == "cuda"
    assert text.layers == pytest.approx(2 / 3) and text.layer_aggregation == "mean"
    assert specs["video"].model == "facebook/vjepa2-vitl-fpc64-256"
    assert check_spec_against_dims(text, 29, 1024) == (1, 1024)  # Qwen3-0.6B
    assert check_spec_against_dims(specs["video"], 25, 1024) == (1, 1024)


def test_only_checkpoint_modalities() -> None:
    specs = feature_specs_from_config(RELEASED, {"audio": (2, 1024)})
    assert list(specs) == ["audio"]


def test_mismatch_names_modality_wanted_and_given() -> None:
    specs = feature_specs_from_config(RELEASED, RELEASED_DIMS)
    with pytest.raises(TribeConfigError) as err:
        check_spec_against_dims(specs["text"], 29, 2048)  # Llama-3.2-1B hidden size
    msg = str(err.value)
    assert "text" in msg and "(2, 3072)" in msg and "(2, 2048)" in msg
    with pytest.raises(TribeConfigError, match=r"video.*\(2, 1408\).*\(1, 1408\)"):
        check_spec_against_dims(
            FeatureSpec("video", "m", layers=2 / 3, layer_aggregation="mean"),
            41,
            1408,
            RELEASED_DIMS,
        )


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda c: c["data"].pop("audio_feature"), "audio_feature"),
        (lambda c: c["data"]["video_feature"].pop("image"), "image"),
        (lambda c: c["data"].update(layer_aggregation="median"), "layer_aggregation"),
        (lambda c: c.pop("data"), "data"),
    ],
)
def test_bad_configs(mutate, match: str) -> None:  # noqa: ANN001
    config = copy.deepcopy(RELEASED)
    mutate(config)
    with pytest.raises(TribeConfigError, match=match):
        feature_specs_from_config(config, RELEASED_DIMS)


def test_bad_overrides() -> None:
    with pytest.raises(TribeConfigError, match="batchsize"):
        feature_specs_from_config(RELEASED, RELEASED_DIMS, {"text": {"batchsize": 8}})
    with pytest.raises(TribeConfigError, match="image"):
        feature_specs_from_config(RELEASED, {"text": (2, 3072)}, {"image": {"model": "x"}})


@pytest.mark.parametrize(
    ("layers", "aggregation", "groups"), [([0.5, 0.75, 1.0], "group_mean", 2), (2 / 3, "mean", 1)]
)
def test_data_config_round_trip(layers, aggregation: str, groups: int) -> None:  # noqa: ANN001
    models = {"text": "/m/llama", "audio": "/m/w2vbert", "video": "/m/vjepa2"}
    data = data_config_for(models, layers, aggregation)
    dims = {m: (groups, 32) for m in models}
    specs = feature_specs_from_config({"data": data}, dims)
    assert {m: s.model for m, s in specs.items()} == models
    for spec in specs.values():
        assert spec.n_layer_groups(6) == groups
        assert spec.layer_aggregation == aggregation
    assert (data["layers_to_use"] is None) == (groups == 1)


def test_store_attrs_detect_stale_stores(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 32}')
    spec = FeatureSpec("audio", str(model))
    attrs = feature_store_attrs(spec, 12.5)
    assert (
        attrs["model_hash"] and attrs["duration_s"] == 12.5 and attrs["layers"] == [0.5, 0.75, 1.0]
    )
    store = tmp_path / "audio.zarr"
    write_feature_store(store, np.ones((2, 32, 25), np.float32), attrs)
    assert store_matches(store, feature_store_attrs(spec, 12.5))
    assert not store_matches(store, feature_store_attrs(spec, 13.0))
    assert not store_matches(
        store, feature_store_attrs(FeatureSpec("audio", str(model), layers=0.5), 12.5)
    )
    assert not store_matches(
        store, feature_store_attrs(FeatureSpec("audio", str(model), dtype="bfloat16"), 12.5)
    )
    (model / "config.json").write_text('{"hidden_size": 64}')  # same path, other model
    assert not store_matches(store, feature_store_attrs(spec, 12.5))
    hub = feature_store_attrs(FeatureSpec("text", "org/model", revision="abc123"), 1.0)
    assert hub["model_hash"] == "" and hub["model_revision"] == "abc123"


def test_demo_builders_are_deterministic(tmp_path: Path) -> None:
    from tribe_core.demo_models.audio import build_tiny_w2vbert
    from tribe_core.demo_models.text import build_tiny_llama
    from tribe_core.features import hidden_state_shape, n_layer_groups

    for build in (build_tiny_llama, build_tiny_w2vbert):
        a, b = build(tmp_path / "a" / build.__name__), build(tmp_path / "b" / build.__name__)
        files = sorted(p.name for p in a.iterdir())
        assert "config.json" in files and "model.safetensors" in files
        assert files == sorted(p.name for p in b.iterdir())
        for name in files:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        n_states, hidden = hidden_state_shape(a)
        assert n_layer_groups(n_states, [0.5, 0.75, 1.0], "group_mean") == 2
        assert n_layer_groups(n_states, 2 / 3, "mean") == 1


def test_modality_dtype_one_or_per_modality() -> None:
    from tribe_core.features.spec import modality_dtype

    assert modality_dtype("bfloat16", "text") == "bfloat16"
    assert modality_dtype(None, "video") == "float32"
    per = {"text": "float16", "video": "bfloat16"}
    assert [modality_dtype(per, m) for m in ("text", "audio", "video")] == [
        "float16", "float32", "bfloat16",
    ]  # fmt: skip
    with pytest.raises(TribeConfigError, match="features.dtype for text: 'fp8'"):
        modality_dtype({"text": "fp8"}, "text")


def test_fused_setting_accepts_yaml_booleans_and_refuses_others() -> None:
    from tribe_core.errors import TribeConfigError
    from tribe_core.features.spec import FeatureSpec

    assert FeatureSpec("video", "m").fused == "auto"
    assert FeatureSpec("text", "m", fused=True).fused == "on"  # YAML's bare `on`
    assert FeatureSpec("text", "m", fused=False).fused == "off"
    with pytest.raises(TribeConfigError, match=r"video: features.fused must be one of .*maybe"):
        FeatureSpec("video", "m", fused="maybe")

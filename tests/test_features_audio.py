"""Audio features on a tiny random w2v-BERT, equal to neuralset 0.0.2's Wav2VecBert."""

from __future__ import annotations

import dataclasses
import subprocess
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tribe_core.demo_models.audio import build_tiny_w2vbert
from tribe_core.errors import TribeInputError
from tribe_core.features import FeatureSpec, extract_audio_features
from tribe_core.features.audio import load_audio_model
from tribe_core.features.timing import chunk_bounds, shard_chunks


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_w2vbert(tmp_path_factory.mktemp("audio_models") / "w2vbert")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 5.5 s of espeak-ng speech, 16 kHz mono PCM16."""
    root = tmp_path_factory.mktemp("audio_stim")
    raw, wav = root / "raw.wav", root / "speech.wav"
    text = "Hello world, this is a short test of speech. The quick brown fox jumps over the dog."
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(raw),
            "-ar",
            "16000",
            "-ac",
            "1",
            "-c:a",
            "pcm_s16le",
            str(wav),
        ],
        check=True,
    )
    return wav


def _duration(wav: Path) -> float:
    with wave.open(str(wav)) as handle:
        return handle.getnframes() / handle.getframerate()


def _reference(
    model: Path, wav: Path, spec: FeatureSpec, chunk: tuple[float, float] | None
) -> np.ndarray:
    base = pytest.importorskip("neuralset.extractors.base")
    audio_mod = pytest.importorskip("neuralset.extractors.audio")
    utils = pytest.importorskip("neuralset.events.utils")
    transforms = pytest.importorskip("neuralset.events.transforms")
    base.HuggingFaceMixin.repo_exists = lambda self: True  # local model, offline
    extractor = audio_mod.Wav2VecBert(
        model_name=str(model),
        layers=list(spec.layers),
        layer_aggregation=spec.layer_aggregation,
        frequency=2.0,
        aggregation="sum",
        device="cpu",
    )
    events = utils.standardize_events(
        pd.DataFrame(
            [{"type": "Audio", "filepath": str(wav), "start": 0.0, "timeline": "t", "subject": "s"}]
        )
    )
    if chunk is not None:
        events = transforms.ChunkEvents(
            event_type_to_chunk="Audio", max_duration=chunk[0], min_duration=chunk[1]
        )(events)
        assert len(events) > 1
    return extractor(events, start=0.0, duration=_duration(wav)).numpy()


@pytest.mark.parametrize("chunk", [None, (2.0, 1.0)])
def test_equals_neuralset(model: Path, speech: Path, chunk) -> None:  # noqa: ANN001
    spec = FeatureSpec("audio", str(model))
    if chunk is not None:  # short chunks exercise the reference's 60 s / 30 s chunking rule
        spec = dataclasses.replace(spec, chunk_max_s=chunk[0], chunk_min_s=chunk[1])
    duration = _duration(speech)
    ours = extract_audio_features(speech, spec, duration)
    ref = _reference(model, speech, spec, chunk)
    assert ours.shape == ref.shape == (2, 32, round(duration * 2))
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_chunks_are_encoded_independently(model: Path, speech: Path) -> None:
    spec = FeatureSpec("audio", str(model))
    duration = _duration(speech)
    whole = extract_audio_features(speech, spec, duration)
    chunked = extract_audio_features(
        speech, dataclasses.replace(spec, chunk_max_s=2.0, chunk_min_s=1.0), duration
    )
    batched = extract_audio_features(
        speech, dataclasses.replace(spec, chunk_max_s=2.0, chunk_min_s=1.0, batch_size=1), duration
    )
    np.testing.assert_allclose(chunked, batched, rtol=1e-4, atol=1e-5)
    assert not np.allclose(whole, chunked, atol=1e-3)  # CMVN/attention differ per chunk
    # time shards of whole chunks, merged, equal the unsharded features
    short = dataclasses.replace(spec, chunk_max_s=2.0, chunk_min_s=1.0)
    bounds = chunk_bounds(duration, 2.0, 1.0)
    shards = shard_chunks(len(bounds), 2)
    assert len(bounds) == 3 and shards == [[0, 1], [2]]
    parts = [extract_audio_features(speech, short, duration, chunks=c) for c in shards]
    assert np.all(parts[0][..., 8:] == 0) and np.all(parts[1][..., :8] == 0)
    np.testing.assert_allclose(parts[0] + parts[1], chunked, rtol=1e-4, atol=1e-5)


def test_empty_and_unreadable_audio(model: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(b"")
    spec = FeatureSpec("audio", str(model))
    assert extract_audio_features(empty, spec, 10.0) is None
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not a wav file")
    with pytest.raises(TribeInputError, match="broken.wav"):
        extract_audio_features(broken, spec, 1.0)


def test_grid_follows_stimulus_duration(model: Path, speech: Path) -> None:
    """The media's duration sets T; the audio fills the steps it covers."""
    spec = FeatureSpec("audio", str(model))
    out = extract_audio_features(speech, spec, 8.0)
    assert out.shape[-1] == 16
    n_audio = round(_duration(speech) * 2)
    assert np.all(out[..., n_audio:] == 0) and np.all(
        np.abs(out[..., :n_audio]).sum(axis=(0, 1)) > 0
    )


def test_layout_checked_before_loading(model: Path) -> None:
    from tribe_core.demo_models.tribe import data_config_for
    from tribe_core.errors import TribeConfigError
    from tribe_core.features import check_feature_models, feature_specs_from_config

    data = data_config_for({"audio": str(model)}, [0.5, 0.75, 1.0], "group_mean")
    good = feature_specs_from_config({"data": data}, {"audio": (2, 32)})
    assert check_feature_models(good) == {"audio": (2, 32)}
    bad = feature_specs_from_config({"data": data}, {"audio": (2, 1024)})  # w2v-BERT 2.0's size
    with pytest.raises(TribeConfigError, match=r"audio.*\(2, 1024\).*\(2, 32\)"):
        check_feature_models(bad)
    with pytest.raises(TribeConfigError, match="audio"):
        load_audio_model(bad["audio"])

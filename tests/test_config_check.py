"""Start-up config checks: misspelt keys in one line, a checkpoint that cannot load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tribe_core.config_check import check_checkpoint, check_config_keys
from tribe_core.errors import TribeConfigError

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def _config(**changes: object) -> dict:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config.update(changes)
    return config


def test_known_keys_pass() -> None:
    check_config_keys(_config(), SCHEMA)
    check_config_keys(_config(stimuli={"source": "x", "on_error": "skip"}), SCHEMA)
    check_config_keys(_config(resources={"predict": {"mem_mb": 1}}), SCHEMA)  # open section
    check_config_keys(_config(products={"real_fmri": {"any name": "run.npy"}}), SCHEMA)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"stimulus": "x"},
            "config: unknown key 'stimulus' (did you mean 'stimuli'?); allowed keys: stimuli, "
            "results_dir, language, checkpoint,",
        ),
        (
            {"predict": {"batchsize": 2}},
            "config: unknown key 'predict.batchsize' (did you mean 'predict.batch_size'?); "
            "allowed keys in 'predict': device, precision, batch_size,",
        ),
        (
            {"stimuli": {"source": "x", "on_eror": "skip"}},
            "config: unknown key 'stimuli.on_eror' (did you mean 'stimuli.on_error'?); "
            "allowed keys in 'stimuli': source, on_error",
        ),
        (
            {"features": {"dtype": {"audio": "bfloat16", "speech": "float16"}}},
            "config: unknown key 'features.dtype.speech'; allowed keys in 'features.dtype': "
            "text, audio, video",
        ),
        ({"zzz": 1}, "config: unknown key 'zzz'; allowed keys: stimuli,"),
    ],
)
def test_unknown_key_is_one_line_with_the_nearest_key(changes: dict, line: str) -> None:
    with pytest.raises(TribeConfigError) as info:
        check_config_keys(_config(**changes), SCHEMA)
    message = str(info.value)
    assert "\n" not in message and message.startswith(line), message


def test_several_unknown_keys_one_line_each() -> None:
    with pytest.raises(TribeConfigError) as info:
        check_config_keys(_config(stimulus="x", predict={"devise": "cpu"}), SCHEMA)
    lines = str(info.value).splitlines()
    assert [x.split(";")[0] for x in lines] == [  # in the config's order
        "config: unknown key 'predict.devise' (did you mean 'predict.device'?)",
        "config: unknown key 'stimulus' (did you mean 'stimuli'?)",
    ]


def test_local_checkpoint_must_hold_config_and_weights(demo_models: Path, tmp_path: Path) -> None:
    check_checkpoint(str(demo_models / "tribe"))
    missing = tmp_path / "models" / "tribe"
    with pytest.raises(TribeConfigError) as info:
        check_checkpoint(str(missing))
    assert str(info.value).startswith(f"config key `checkpoint`: {str(missing)!r} does not exist")
    partial = shutil.copytree(demo_models / "tribe", tmp_path / "partial")
    weights = [p for p in partial.iterdir() if p.name in ("best.ckpt", "model.safetensors")]
    for path in weights:
        path.unlink()
    with pytest.raises(TribeConfigError, match=r"partial' lacks best\.ckpt \(or model"):
        check_checkpoint(str(partial))
    (partial / "config.yaml").unlink()
    with pytest.raises(TribeConfigError, match=r"lacks config\.yaml and best\.ckpt"):
        check_checkpoint(str(partial), key="feature_models.text")
    with pytest.raises(TribeConfigError, match=r"`feature_models\.text`: .* is a file"):
        check_checkpoint(str(demo_models / "tribe" / "config.yaml"), key="feature_models.text")


def test_relative_checkpoint_under_an_existing_folder_is_a_local_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``demo_models/tribe`` looks like a hub id; with ``demo_models/`` present it is a path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo_models").mkdir()
    with pytest.raises(TribeConfigError, match=r"'demo_models/tribe' \(in .*\) does not exist"):
        check_checkpoint("demo_models/tribe")


def _fake_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """The Hugging Face cache layout hf_hub_download reads offline."""
    revision = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)


def test_hub_id_must_be_cached_when_offline(
    demo_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub"
    files = {n: (demo_models / "tribe" / n).read_bytes() for n in ("config.yaml", "best.ckpt")}
    _fake_hub_cache(cache, "org/cached", files)
    check_checkpoint("org/cached", cache_dir=cache)
    with pytest.raises(TribeConfigError) as info:
        check_checkpoint("org/absent", cache_dir=cache)
    message = str(info.value)
    assert message.startswith(
        "config key `checkpoint`: 'org/absent' is no local directory, and as a hub id it is "
        "not in the Hugging Face cache (HF_HUB_OFFLINE is set)"
    )
    _fake_hub_cache(cache, "org/config-only", {"config.yaml": files["config.yaml"]})
    with pytest.raises(TribeConfigError, match="neither model.safetensors nor best.ckpt"):
        check_checkpoint("org/config-only", cache_dir=cache)
    # online, the jobs download it: nothing to check at start-up (and no network here)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    check_checkpoint("org/absent", cache_dir=cache)

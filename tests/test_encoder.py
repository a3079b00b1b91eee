"""Tests of tribe_core.encoder: parity with the reference, strict loading, safe config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch

from tests.conftest import REPO, require_shared
from tribe_core.demo_models.tribe import random_config, save_random_checkpoint
from tribe_core.encoder import TribeEncoder, load_config_yaml, load_encoder
from tribe_core.encoder.config import dump_config_yaml
from tribe_core.encoder.inference import prepare_encoder
from tribe_core.errors import CheckpointError, TribeConfigError, TribeInputError

# A copy of ../shared/fixtures/encoder_small (the reference's parity fixture, 2.6 MB), so
# the parity test runs in a clone with nothing beside it; test_fixture_copy_is_current
# checks the copy against its source where ../shared exists.
FIXTURE = REPO / "tests" / "data" / "encoder_small"
OUTPUT_CASES = ("out", "out_no_text", "out_no_audio", "out_no_video")

# Dims deliberately unlike the fixture: 2 modalities, 1 and 3 layer groups, odd sizes.
OTHER_DIMS = {"audio": (1, 40), "video": (3, 8)}
OTHER_ARCH = dict(hidden=64, depth=2, heads=2, n_outputs=30, low_rank_head=12, n_output_timesteps=7)


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    assert (FIXTURE / "best.ckpt").is_file(), f"the encoder parity fixture is missing: {FIXTURE}"
    return FIXTURE


def test_fixture_copy_is_current() -> None:
    """tests/data/encoder_small is byte-equal to ../shared/fixtures/encoder_small."""
    source = require_shared("fixtures", "encoder_small")
    names = sorted(p.name for p in source.iterdir())
    assert names == sorted(p.name for p in FIXTURE.iterdir())
    for name in names:
        assert (FIXTURE / name).read_bytes() == (source / name).read_bytes(), name


@pytest.fixture(scope="module")
def fixture_encoder(fixture_dir: Path) -> TribeEncoder:
    return load_encoder(fixture_dir)


@pytest.fixture(scope="module")
def other_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("other") / "model"
    return save_random_checkpoint(
        out, feature_dims=OTHER_DIMS, data_config={"duration_trs": 7}, seed=3, **OTHER_ARCH
    )


def _fixture_cases(fixture_dir: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    inputs = np.load(fixture_dir / "inputs.npz")
    expected = np.load(fixture_dir / "expected.npz")
    feats = {k: torch.from_numpy(inputs[k]) for k in inputs.files}
    cases = {"out": feats}
    for name in feats:
        cases[f"out_no_{name}"] = {k: v for k, v in feats.items() if k != name}
    return cases, {k: expected[k] for k in expected.files}


@pytest.mark.parametrize("fast", [False, True], ids=["reference-maths", "sdpa-pool-first"])
def test_fixture_parity_all_four_outputs(fixture_dir: Path, fast: bool) -> None:
    encoder = load_encoder(fixture_dir)
    model = prepare_encoder(encoder, precision="tf32") if fast else encoder
    cases, expected = _fixture_cases(fixture_dir)
    assert sorted(cases) == sorted(OUTPUT_CASES) == sorted(expected)
    with torch.inference_mode():
        for name, feats in cases.items():
            got = model(feats).numpy()
            assert got.shape == expected[name].shape, name
            assert _max_rel(got, expected[name]) <= 1e-5, name


def test_loaded_encoder_contract(fixture_encoder: TribeEncoder) -> None:
    enc = fixture_encoder
    assert not enc.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in enc.parameters())
    assert enc.feature_dims == {"text": (3, 24), "audio": (3, 16), "video": (3, 20)}
    assert list(enc.feature_dims) == ["text", "audio", "video"]
    assert (enc.n_outputs, enc.n_output_timesteps) == (64, 10)
    # Training-time subject settings stay in the config; the model is average-subject.
    assert enc.config["brain_model_config"]["subject_layers"]["n_subjects"] == 4
    assert tuple(enc.predictor.weights.shape) == (1, 16, 64)
    assert enc.config["infra"]["folder"] == PurePosixPath("/checkpoint/tribe/run0")


def _oracle_forward(enc: TribeEncoder, feats: dict[str, torch.Tensor]) -> torch.Tensor:
    """The reference's ``FmriEncoderModel`` (tribev2/model.py) around x_transformers' Encoder."""
    x_transformers = pytest.importorskip("x_transformers")
    arch = enc.arch
    xenc = x_transformers.Encoder(
        dim=arch.hidden,
        depth=arch.depth,
        heads=arch.heads,
        attn_dim_head=arch.hidden // arch.heads,
        ff_mult=arch.ff_mult,
        use_scalenorm=True,
        rotary_pos_emb=True,
        scale_residual=True,
        attn_dropout=0.0,
        ff_dropout=0.0,
        layer_dropout=0.0,
    ).eval()
    state = {
        k[len("encoder.") :]: v for k, v in enc.state_dict().items() if k.startswith("encoder.")
    }
    xenc.load_state_dict(state, strict=True)  # our key names are x_transformers'
    b, _, _, t = next(iter(feats.values())).shape
    parts = []
    for name, proj in enc.projectors.items():
        if name in feats:
            x = feats[name].reshape(b, -1, t).transpose(1, 2)
            parts.append(torch.nn.functional.linear(x, proj.weight, proj.bias))
        else:
            parts.append(torch.zeros(b, t, proj.out_features))
    h = torch.cat(parts, -1) + enc.time_pos_embed[:, :t]
    h = xenc(h)
    if enc.low_rank_head is not None:
        h = h @ enc.low_rank_head.weight.T
    out = torch.einsum("bct,cd->bdt", h.transpose(1, 2), enc.predictor.weights[0])
    out = out + enc.predictor.bias[0].view(1, -1, 1)
    return torch.nn.functional.adaptive_avg_pool1d(out, enc.n_output_timesteps)


@pytest.mark.parametrize("low_rank", [12, None])
def test_random_checkpoint_other_dims_matches_oracle(tmp_path: Path, low_rank: int | None) -> None:
    arch = {**OTHER_ARCH, "low_rank_head": low_rank}
    path = save_random_checkpoint(tmp_path / "m", feature_dims=OTHER_DIMS, seed=5, **arch)
    enc = load_encoder(path)
    assert enc.feature_dims == OTHER_DIMS and enc.n_outputs == 30
    gen = torch.Generator().manual_seed(0)
    feats = {k: torch.randn(3, L, D, 14, generator=gen) for k, (L, D) in OTHER_DIMS.items()}
    with torch.inference_mode():
        for case in (feats, {"video": feats["video"]}):
            got = enc(case)
            want = _oracle_forward(enc, case)
            assert got.shape == (3, 30, 7)
            assert _max_rel(got.numpy(), want.numpy()) <= 1e-5


def test_random_checkpoint_layout_and_determinism(tmp_path: Path, other_ckpt: Path) -> None:
    ckpt = torch.load(other_ckpt / "best.ckpt", weights_only=True)
    assert ckpt["model_build_args"] == {
        "feature_dims": OTHER_DIMS,
        "n_outputs": 30,
        "n_output_timesteps": 7,
    }
    assert all(k.startswith("model.") for k in ckpt["state_dict"])
    again = save_random_checkpoint(
        tmp_path / "again",
        feature_dims=OTHER_DIMS,
        data_config={"duration_trs": 7},
        seed=3,
        **OTHER_ARCH,
    )
    other_seed = save_random_checkpoint(
        tmp_path / "seed4", feature_dims=OTHER_DIMS, seed=4, **OTHER_ARCH
    )
    a = torch.load(again / "best.ckpt", weights_only=True)["state_dict"]
    c = torch.load(other_seed / "best.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(ckpt["state_dict"][k], a[k]) for k in a)
    assert not torch.equal(
        ckpt["state_dict"]["model.low_rank_head.weight"], c["model.low_rank_head.weight"]
    )


def test_random_checkpoint_config_like_release(other_ckpt: Path) -> None:
    text = (other_ckpt / "config.yaml").read_text()
    assert "!!python/tuple" in text and "!!python/object/apply:pathlib.PosixPath" in text
    config = load_config_yaml(other_ckpt / "config.yaml")
    subject = config["brain_model_config"]["subject_layers"]
    assert subject["n_subjects"] > 0 and subject["average_subjects"] is False
    assert config["average_subjects"] is False
    assert config["data"]["duration_trs"] == 7  # merged from data_config
    assert config["data"]["feature_dims_seen"]["video"] == (3, 8)
    assert isinstance(config["infra"]["folder"], PurePosixPath)


def test_demo_sized_checkpoint_is_small(tmp_path: Path) -> None:
    """A demo-sized checkpoint (20,484 outputs, low-rank head 8) stays a few MB on disk."""
    save_random_checkpoint(
        tmp_path / "demo",
        feature_dims={"text": (2, 64), "audio": (2, 32), "video": (2, 48)},
        hidden=48,
        depth=1,
        heads=1,
        n_outputs=20484,
        low_rank_head=8,
        n_output_timesteps=100,
        data_config={},
    )
    enc = load_encoder(tmp_path / "demo")
    assert enc.n_outputs == 20484
    n_params = sum(p.numel() for p in enc.parameters())
    # float32 weights plus pickling overhead: the head's 20,484 x 8 dominates.
    assert 4 * n_params <= (tmp_path / "demo" / "best.ckpt").stat().st_size < 8 * n_params + 2**20
    assert n_params < 500_000


def test_dim_head_below_32_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TribeConfigError, match="dim_head=24 < 32"):
        save_random_checkpoint(
            tmp_path / "bad",
            feature_dims={"text": (2, 8)},
            hidden=48,
            depth=1,
            heads=2,
            n_outputs=5,
            low_rank_head=4,
            n_output_timesteps=3,
        )


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    ],
)
def test_config_refuses_other_python_tags(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "config.yaml"
    path.write_text("a: !!python/tuple [1, 2]\nb: " + payload.format(marker=marker) + "\n")
    with pytest.raises(TribeConfigError, match="refusing python tag"):
        load_config_yaml(path)
    assert not marker.exists()


def test_config_reads_release_tags(fixture_dir: Path) -> None:
    config = load_config_yaml(fixture_dir / "config.yaml")
    assert config["data"]["feature_dims_seen"]["text"] == (3, 24)
    assert config["data"]["neuro"]["offset"] == 5


def test_config_missing_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(TribeConfigError, match="does not exist"):
        load_config_yaml(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(TribeConfigError, match="must be a mapping"):
        load_config_yaml(tmp_path / "list.yaml")


def _rewrite_ckpt(src: Path, dst: Path, edit) -> Path:
    dst.mkdir()
    (dst / "config.yaml").write_text((src / "config.yaml").read_text())
    ckpt = torch.load(src / "best.ckpt", weights_only=True)
    edit(ckpt["state_dict"])
    torch.save(ckpt, dst / "best.ckpt")
    return dst


def test_strict_loading_reports_missing_unexpected_and_shapes(
    tmp_path: Path, other_ckpt: Path
) -> None:
    def edit(sd: dict) -> None:
        del sd["model.encoder.layers.1.1.ff.2.bias"]
        sd["model.encoder.layers.9.1.to_q.weight"] = torch.zeros(2, 2)
        sd["model.low_rank_head.weight"] = torch.zeros(11, 64)

    bad = _rewrite_ckpt(other_ckpt, tmp_path / "bad", edit)
    with pytest.raises(CheckpointError) as info:
        load_encoder(bad)
    msg = str(info.value)
    assert "missing keys (1): encoder.layers.1.1.ff.2.bias" in msg
    assert "unexpected keys (1): encoder.layers.9.1.to_q.weight" in msg
    assert "low_rank_head.weight: checkpoint (11, 64) vs model (12, 64)" in msg
    assert str(bad / "best.ckpt") in msg


def test_config_and_weights_disagree(tmp_path: Path, other_ckpt: Path) -> None:
    bad = _rewrite_ckpt(other_ckpt, tmp_path / "deeper", lambda sd: None)
    config = load_config_yaml(bad / "config.yaml")
    config["brain_model_config"]["encoder"]["depth"] = 3
    dump_config_yaml(config, bad / "config.yaml")
    with pytest.raises(CheckpointError, match=r"missing keys \(12\): encoder.layers.4"):
        load_encoder(bad)


def test_unsupported_architecture_option(tmp_path: Path, other_ckpt: Path) -> None:
    bad = _rewrite_ckpt(other_ckpt, tmp_path / "rms", lambda sd: None)
    config = load_config_yaml(bad / "config.yaml")
    config["brain_model_config"]["encoder"]["use_rmsnorm"] = True
    config["brain_model_config"]["combiner"] = {"name": "Mlp"}
    dump_config_yaml(config, bad / "config.yaml")
    with pytest.raises(TribeConfigError) as info:
        load_encoder(bad)
    assert "encoder.use_rmsnorm=True" in str(info.value)
    assert "brain_model_config.combiner={'name': 'Mlp'}" in str(info.value)


def test_missing_weights_and_bad_paths(tmp_path: Path, other_ckpt: Path) -> None:
    only_config = tmp_path / "only_config"
    only_config.mkdir()
    (only_config / "config.yaml").write_text((other_ckpt / "config.yaml").read_text())
    with pytest.raises(CheckpointError, match="neither best.ckpt nor model.safetensors"):
        load_encoder(only_config)
    with pytest.raises(CheckpointError, match="no such directory"):
        load_encoder(tmp_path / "does" / "not" / "exist")
    with pytest.raises(CheckpointError, match="is a file"):
        load_encoder(other_ckpt / "best.ckpt")


def test_hub_id_offline_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="could not fetch config.yaml of hub model"):
        load_encoder("nobody-xyz/tribev2-absent", cache_dir=tmp_path, local_files_only=True)


def test_hub_id_resolves_from_cache(tmp_path: Path, other_ckpt: Path) -> None:
    # The layout huggingface_hub itself writes: refs/main -> snapshots/<commit>/files.
    commit = "0" * 40
    repo = tmp_path / "models--someone--tribe-mini"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in ("config.yaml", "best.ckpt"):
        (snap / name).write_bytes((other_ckpt / name).read_bytes())
    enc = load_encoder("someone/tribe-mini", cache_dir=tmp_path, local_files_only=True)
    ref = load_encoder(other_ckpt)
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in enc.state_dict().items())


def test_convert_to_safetensors_same_outputs(
    tmp_path: Path, fixture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "converted"
    proc = subprocess.run(
        [sys.executable, "-m", "tribe_core.encoder", "convert", str(fixture_dir), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.safetensors").is_file() and not (out / "best.ckpt").exists()
    enc = load_encoder(out)
    cases, expected = _fixture_cases(fixture_dir)
    with torch.inference_mode():
        got = enc(cases["out"]).numpy()
    assert _max_rel(got, expected["out"]) <= 1e-5
    from tribe_core.encoder.__main__ import main

    assert main(["convert", str(tmp_path / "nope"), str(out)]) == 1
    assert "no such directory" in capsys.readouterr().err


def test_forward_rejects_bad_features(fixture_encoder: TribeEncoder) -> None:
    good = torch.zeros(1, 3, 24, 20)
    with pytest.raises(TribeInputError, match=r"modality 'text'.*\(L, D\) = \(3, 24\)"):
        fixture_encoder({"text": torch.zeros(1, 2, 24, 20)})
    with pytest.raises(TribeInputError, match="unknown modality 'smell'"):
        fixture_encoder({"text": good, "smell": good})
    with pytest.raises(TribeInputError, match="disagree"):
        fixture_encoder({"text": good, "audio": torch.zeros(1, 3, 16, 18)})
    with pytest.raises(TribeInputError, match="no modality"):
        fixture_encoder({})
    with torch.inference_mode():
        with_none = fixture_encoder({"text": good, "audio": None})
        np.testing.assert_array_equal(with_none.numpy(), fixture_encoder({"text": good}).numpy())


def test_random_config_round_trips_through_safe_loader(tmp_path: Path) -> None:
    config = random_config(
        feature_dims={"text": (2, 8)}, hidden=96, depth=1, heads=3, low_rank_head=None
    )
    dump_config_yaml(config, tmp_path / "c.yaml")
    assert load_config_yaml(tmp_path / "c.yaml") == config

"""The ``tribe-core`` console script (installed by ``pip install -e .``) and its commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tribe_core.planning import plan_stimulus

SCRIPT = Path(sys.executable).with_name("tribe-core")


def _run(*args: str) -> subprocess.CompletedProcess:
    if not SCRIPT.exists():
        pytest.fail(f"{SCRIPT} is missing: install the package (make venv runs pip install -e .)")
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_help_lists_commands_and_bad_usage_exits_2() -> None:
    out = _run("--help")
    assert out.returncode == 0
    assert all(name in out.stdout for name in ("plan", "convert", "demo-models"))
    assert _run().returncode == 2
    unknown = _run("predict")
    assert unknown.returncode == 2 and "unknown command 'predict'" in unknown.stderr


def test_plan_and_convert_on_the_demo_checkpoint(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
    from tribe_core.media import probe_media
    from tribe_core.stages import checkpoint_meta

    wav = demo_stimuli / "speech_audio.wav"
    out = _run("plan", str(wav), "--checkpoint", str(demo_models / "tribe"))
    assert out.returncode == 0, out.stderr
    _, build_args = checkpoint_meta(str(demo_models / "tribe"))
    expected = plan_stimulus(probe_media(wav).duration_s, feature_dims=build_args["feature_dims"])
    assert json.loads(out.stdout) == json.loads(json.dumps(expected))

    missing = _run("plan", str(tmp_path / "nope.wav"), "--checkpoint", str(demo_models / "tribe"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("error:") and "nope.wav" in missing.stderr

    converted = _run("convert", str(demo_models / "tribe"), str(tmp_path / "st"))
    assert converted.returncode == 0, converted.stderr
    assert (tmp_path / "st" / "model.safetensors").stat().st_size > 0
    assert (tmp_path / "st" / "config.yaml").exists()

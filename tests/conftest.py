"""Shared fixtures: repo paths, the shared parity data, tiny demo models, demo stimuli."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ATLAS_DIR = SHARED / "atlases" / "hcp_mmp1_fsaverage"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def require_shared(*parts: str) -> Path:
    """Return ``../shared/<parts>`` or skip with a clear message if it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared parity data/atlases are not on this machine")
    return path


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every tiny demo model, built once per test session (seconds, offline)."""
    cached = os.environ.get("TRIBEFLOW_DEMO_MODELS")
    if cached and (Path(cached) / "manifest.json").exists():
        return Path(cached)
    out = tmp_path_factory.mktemp("demo_models")
    subprocess.run([sys.executable, "-m", "tribe_core.demo_models", str(out)], check=True, cwd=REPO)
    return out


@pytest.fixture(scope="session")
def demo_stimuli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo stimuli (video with speech, audio, text), made with ffmpeg + espeak-ng."""
    out = tmp_path_factory.mktemp("demo_stimuli")
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_demo_stimuli.py"), str(out)], check=True
    )
    return out

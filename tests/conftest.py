"""Shared fixtures: repo paths, ../shared, a synthetic atlas, tiny demo models, demo stimuli."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The one place the tests name ../shared (CI has it; a user's clone does not).
SHARED = REPO.parent / "shared"
# The real HCP-MMP1 (never vendored): only the real-atlas checks use it.
REAL_ATLAS_DIR = SHARED / "atlases" / "hcp_mmp1_fsaverage"
_SYNTHETIC_ATLAS: list[Path] = []

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def require_shared(*parts: str) -> Path:
    """Return ``../shared/<parts>`` or skip with a clear message if it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared parity data/atlases are not on this machine")
    return path


def synthetic_atlas_dir() -> Path:
    """A synthetic HCP-style parcellation, made once per process by its command.

    ``python -m tribe_core.demo_models.atlas DIR``: 24 HCP-named areas per hemisphere
    (not the real atlas), so the workflow's ROI stages run without ``../shared``.
    """
    if not _SYNTHETIC_ATLAS:
        out = Path(tempfile.mkdtemp(prefix="tribeflow-synthetic-atlas-"))
        subprocess.run(
            [sys.executable, "-m", "tribe_core.demo_models.atlas", str(out)], check=True, cwd=REPO
        )
        _SYNTHETIC_ATLAS.append(out)
    return _SYNTHETIC_ATLAS[0]


@pytest.fixture(scope="session")
def synthetic_atlas() -> Path:
    """Folder with the synthetic ``{lh,rh}.HCP-MMP1.annot`` (see :func:`synthetic_atlas_dir`)."""
    return synthetic_atlas_dir()


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

"""Building the DAG stays light: what the rules import at parse time does not load torch.

Each check imports in a fresh interpreter, since this one has torch loaded already.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

HEAVY = ("torch", "transformers", "nilearn", "matplotlib")


def _heavy_after(*modules: str) -> list[str]:
    """The ``HEAVY`` packages a fresh interpreter has loaded after importing ``modules``."""
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return [m for m in proc.stdout.strip().split(",") if m]


def _parse_time_modules() -> list[str]:
    """``tribe_core`` modules the Snakefile and ``rules/*.smk`` import at their top level."""
    modules: set[str] = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        text = path.read_text(encoding="utf-8")
        modules |= set(re.findall(r"^from (tribe_core[\w.]*) import", text, re.M))
        modules |= set(re.findall(r"^import (tribe_core[\w.]*)", text, re.M))
    return sorted(modules)


def test_parse_time_imports_do_not_load_torch() -> None:
    modules = _parse_time_modules()
    assert {"tribe_core.features.spec", "tribe_core.config_check"} <= set(modules), modules
    assert _heavy_after(*modules) == []
    # the check sees a heavy import where there is one
    assert "torch" in _heavy_after("tribe_core.features.audio")


def test_stage_facade_loads_only_the_asked_stage() -> None:
    """``tribe_core.stages`` resolves each name from its stage module on first use."""
    assert _heavy_after("tribe_core.stages") == []
    code = "from tribe_core.stages import run_extract_audio, run_annotate_words"
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('torch' in sys.modules)"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.strip() == "False"  # media and events stages: no torch

    import tribe_core.stages as stages
    from tribe_core.features.stages import run_extract_features
    from tribe_core.products.stages import run_volumes

    assert stages.run_extract_features is run_extract_features
    assert stages.run_volumes is run_volumes
    assert all(callable(getattr(stages, name)) for name in stages.__all__)
    assert set(stages.__all__) <= set(dir(stages))
    with pytest.raises(AttributeError, match="run_nifti"):
        stages.run_nifti  # noqa: B018


def test_lazy_exports_refuse_names_missing_from_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "drifted"
    package.mkdir()
    (package / "part.py").write_text("def shown():\n    return 1\n\ndef hidden():\n    return 2\n")
    (package / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from tribe_core.lazy import lazy_exports\n"
        "__all__ = ['shown']\n"
        "if TYPE_CHECKING:\n"
        "    from drifted.part import hidden, shown\n"
        "__getattr__, __dir__ = lazy_exports(__name__)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="hidden"):
        import drifted  # noqa: F401

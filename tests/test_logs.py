"""A failing stage leaves its reason in the rule's log file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_uncaught_error_is_written_to_the_rule_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "stage.log"
    code = (
        "from tribe_core.logs import setup_logging\n"
        f"setup_logging({str(log)!r})\n"
        "from tribe_core.errors import TribeInputError\n"
        "raise TribeInputError('bad header', path='clip.mp3', stimulus='clip')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    text = log.read_text()
    assert "stage failed" in text and "clip.mp3" in text and "bad header" in text
    assert "Traceback" in text


def test_stage_resources_line_records_the_process_peak(tmp_path: Path) -> None:
    from tribe_core.logs import read_stage_resources

    log = tmp_path / "stage.log"
    code = (
        "from tribe_core.logs import setup_logging\n"
        f"setup_logging({str(log)!r})\n"
        "import numpy as np\n"
        "a = np.ones(300 * 2**20 // 8)  # 300 MB touched\n"
        "del a\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    usage = read_stage_resources(log)
    assert usage is not None and usage["wall_s"] >= 0 and usage["cuda_peak_mb"] is None
    assert 300 < usage["peak_rss_mb"] < 1500
    assert read_stage_resources(tmp_path / "stage.log") == usage
    other = tmp_path / "other.log"
    other.write_text("no such line\n")
    assert read_stage_resources(other) is None


def test_stage_peak_does_not_include_the_parents(tmp_path: Path) -> None:
    """A small stage started by a big process (Snakemake) reports its own peak."""
    from tribe_core.logs import read_stage_resources

    log = tmp_path / "small.log"
    child = f"from tribe_core.logs import setup_logging; setup_logging({str(log)!r})"
    parent = (
        "import subprocess, sys\nimport numpy as np\n"
        "a = np.ones(600 * 2**20 // 8)  # 600 MB in the parent\n"
        f"subprocess.run([sys.executable, '-c', {child!r}], check=True)\n"
    )
    subprocess.run([sys.executable, "-c", parent], check=True, capture_output=True)
    usage = read_stage_resources(log)
    assert usage is not None and usage["peak_rss_mb"] < 400

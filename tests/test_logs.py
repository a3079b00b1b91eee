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

"""benchmarks/transcription.py: bounded decoding and alignment timed on a tiny Whisper (CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_tiny_transcription_bench_decodes_exactly_the_bound(tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "tr.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "transcription.py"), "--size", "tiny",
         "--minutes", "0.75", "--batch-size", "1", "--tokens", "5", "--device", "cpu",
         "--dtype", "float32", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "s for an hour" in proc.stdout
    result = json.loads(out.read_text())
    assert result["windows"] == 2  # 45 s: one full 30 s window and one padded
    assert result["asr"]["windows"] == 2 and result["align"]["windows"] == 2
    assert result["asr"]["tokens_per_window"] == 5  # random weights: exactly the bound
    assert result["asr"]["audio_s_per_s"] > 0 and result["align"]["audio_s_per_s"] > 0
    assert result["film_hour_s"] > 0
    assert result["stage_s"] == round(result["asr"]["seconds"] + result["align"]["seconds"], 3)

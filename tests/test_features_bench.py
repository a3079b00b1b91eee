"""The feature benchmark runs end to end (tiny models, a few seconds of media)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.features import run


@pytest.mark.slow
def test_bench_tiny_runs_and_matches_reference_path(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        size="tiny", device="cpu", dtype="float32", batch_size=4, seconds=3.0,
        video_size="96x64", modalities=["text", "audio", "video"], text_arch="llama-3.2-3b",
        video_arch="vitg", warmup=False, text_history=0, text_context_stride=1,
    )  # fmt: skip
    results = run(args)
    for modality in ("text", "audio", "video"):
        row = results[modality]
        assert row["ours_s_per_s"] > 0 and row["reference_s_per_s"] > 0
        # float32 both ways: the fast paths give the reference-equivalent features
        assert row["min_cosine_per_step"] > 0.99999
    assert "video reference" in capsys.readouterr().out


def test_bench_text_sliding_window_with_context_stride() -> None:
    """Past 1024 words with stride 8: fewer forwards, close to the one-per-word reference."""
    args = argparse.Namespace(
        size="tiny", device="cpu", dtype="float32", batch_size=8, seconds=12.0,
        video_size="96x64", modalities=["text"], text_arch="llama-3.2-3b", video_arch="vitg",
        warmup=False, text_history=1100, text_context_stride=8,
    )  # fmt: skip
    row = run(args)["text"]
    assert 0.99 < row["min_cosine_per_step"] < 1.0  # approximate, yet close
    assert row["ours_s_per_s"] > 0

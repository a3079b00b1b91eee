"""benchmarks/end_to_end.py: the whole workflow on a half-minute film (tiny models, CPU)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, synthetic_atlas_dir

STAGES = (
    "extract_audio", "transcribe", "annotate_words", "extract_text_features",
    "extract_audio_features", "extract_video_features", "predict", "roi_table", "volumes",
    "plots", "report",
)  # fmt: skip
MODEL_STAGES = ("extract_text_features", "extract_audio_features", "extract_video_features")


@pytest.mark.slow
def test_end_to_end_tiny_film_every_stage_measured(tmp_path) -> None:  # noqa: ANN001
    atlas = synthetic_atlas_dir()
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    out = tmp_path / "out"
    # --ffmpeg-shims always: the ffprobe stand-in the GPU machine needs is the one used here.
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "end_to_end.py"), "--size", "tiny",
         "--minutes", "0.5", "--work", str(tmp_path / "work"), "--out", str(out),
         "--device", "cpu", "--dtype", "float32", "--precision", "fp32", "--cores", "2",
         "--atlas-dir", str(atlas), "--ffmpeg-shims", "always", "--transcription", "alongside",
         "--movie-threads", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "workflow (snakemake)" in proc.stdout
    report = json.loads((out / "end_to_end.json").read_text())

    stages = report["workflow"]["stages"]
    assert set(STAGES) <= set(stages), sorted(stages)
    for name in STAGES:
        assert stages[name]["wall_s"] > 0, name
        assert stages[name]["peak_rss_mb"] > 0, name
    assert report["workflow"]["wall_s"] >= max(s["wall_s"] for s in stages.values())
    for name in (*MODEL_STAGES, "predict"):
        assert report["reference"][name]["equiv_s"] > 0, name
        assert stages[name]["ratio"] > 0, name
    assert report["reference"]["extract_video_features"]["n_sample"] == 20
    assert report["reference"]["extract_text_features"]["n_total"] == 75  # 2.5 words/s

    film = report["film"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
         "-of", "json", film["video"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    info = json.loads(probe.stdout)
    assert float(info["format"]["duration"]) == pytest.approx(30.0, abs=0.1)
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    words = (tmp_path / "work" / "stimuli" / "film.words.tsv").read_text().splitlines()
    assert words[0] == "word\tstart\tduration" and len(words) == 1 + film["n_words"] == 76

    # the recogniser's model work ran beside the workflow, and the hour is re-timed with it
    asr = report["workflow"]["transcription"]
    assert asr["returncode"] == 0 and asr["measured"]["audio_s"] == pytest.approx(30.0)
    both = report["with_transcription"]
    assert both["wall_s"] >= report["workflow"]["wall_s"]
    assert "--set-threads" in report["workflow"]["command"]
    assert "workflow + transcription" in proc.stdout


def _stages(**walls: tuple[float, float]) -> dict:
    return {name: {"start_s": start, "wall_s": wall} for name, (start, wall) in walls.items()}


def test_with_transcription_delays_predict_only_when_text_would_end_later() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from benchmarks.end_to_end import with_transcription

    stages = _stages(
        annotate_words=(20.0, 2.0), extract_text_features=(22.0, 100.0), predict=(500.0, 20.0)
    )
    early = {"wall_s": 600.0, "stages": stages, "transcription": {"returncode": 0, "end_s": 150.0}}
    assert with_transcription(early)["wall_s"] == 600.0  # text would end at 252 < 500
    late = {**early, "transcription": {"returncode": 0, "end_s": 450.0}}
    result = with_transcription(late)
    assert result["text_features_end_s"] == 552.0
    assert result["wall_s"] == 652.0  # predict starts 52 s later
    failed = {**early, "transcription": {"returncode": 1, "end_s": 10.0}}
    assert with_transcription(failed) is None
    assert with_transcription({**early, "transcription": None}) is None

"""The demo workflow end to end, from a clean copy of the repository, on tiny models."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO
from tests.workflow_helpers import make_workdir, planned_jobs, rule_blocks, snakemake


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory, demo_models: Path, demo_stimuli: Path) -> Path:
    """A clean copy of the repository with demo stimuli plus a silent video."""
    stimuli = tmp_path_factory.mktemp("stimuli") / "stimuli"
    shutil.copytree(demo_stimuli, stimuli)
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=96x72:rate=25:duration=3", "-pix_fmt", "yuv420p",
         str(stimuli / "silent clip.mp4")],
        check=True,
    )  # fmt: skip
    return make_workdir(tmp_path_factory.mktemp("clone") / "tribeflow", demo_models, stimuli)


@pytest.fixture(scope="module")
def finished_run(workflow_dir: Path) -> Path:
    proc = snakemake(workflow_dir, "--cores", "2")
    (workflow_dir / "first_run.out").write_text(proc.stdout + proc.stderr)
    return workflow_dir


def test_every_output_with_right_shapes(finished_run: Path) -> None:
    from tribe_core.io.zarr_store import read_feature_store
    from tribe_core.segments import read_predictions

    results = finished_run / "results"
    names = {"speech_video", "speech_audio", "asr_audio", "story", "silent clip"}
    assert {p.name for p in results.iterdir() if p.is_dir()} >= names
    for name in names:
        base = results / name
        for rel in (
            "audio.wav", "media.json", "transcript.json", "events.tsv",
            "rois/roi_timeseries.tsv", "rois/roi_mean.tsv", "rois/roi_top.tsv",
            "nifti/predictions.nii.gz", "nifti/predictions.lh.func.gii", "report.html",
        ):  # fmt: skip
            assert (base / rel).is_file(), f"{name}: {rel} missing"
        result = read_predictions(base / "predictions.zarr")
        n_trs = result.predictions.shape[0]
        assert result.predictions.shape == (n_trs, 20484)
        assert n_trs >= 1 and np.isfinite(result.predictions).all()
        assert list(base.joinpath("plots").glob("*.png")), f"{name}: no plot"
        text, _ = read_feature_store(base / "features" / "text.zarr")
        audio, _ = read_feature_store(base / "features" / "audio.zarr")
        if name == "silent clip":
            assert text is None and audio is None
        else:
            assert audio is not None and audio.ndim == 3
        if name in {"speech_video", "speech_audio", "story"}:  # words from sidecar or text
            assert text is not None and text.ndim == 3 and np.abs(text).max() > 0, name
        if name in {"speech_video", "silent clip"}:
            video, _ = read_feature_store(base / "features" / "video.zarr")
            assert video is not None and video.ndim == 3
        else:
            assert not (base / "features" / "video.zarr").exists()


def test_spoken_words_come_from_sidecars_and_whisperx_still_runs(finished_run: Path) -> None:
    """speech_video and speech_audio take the words espeak-ng spoke, with their times, from
    their ``.words.tsv`` sidecars; asr_audio has none and goes through whisperX."""
    import json

    import pandas as pd

    from tribe_core.events.sidecar import find_sidecar

    results = finished_run / "results"
    for name, word in (("speech_video", "fox"), ("speech_audio", "boat")):
        sidecar = pd.read_csv(
            finished_run / "stimuli" / f"{name}.words.tsv", sep="\t", keep_default_na=False
        )
        transcript = json.loads((results / name / "transcript.json").read_text())
        assert transcript["source"] == "sidecar", name
        events = pd.read_csv(results / name / "events.tsv", sep="\t", keep_default_na=False)
        words = events[events["type"] == "Word"]
        assert len(words) >= 12 and words["text"].tolist() == sidecar["word"].tolist(), name
        np.testing.assert_allclose(words["start"], sidecar["start"], atol=1e-3)
        np.testing.assert_allclose(words["duration"], sidecar["duration"], atol=1e-3)
        assert f'class="wlabel">{word}<' in (results / name / "report.html").read_text()
        assert "using sidecar" in (results / name / "logs" / "transcribe.log").read_text()
    assert find_sidecar(finished_run / "stimuli" / "asr_audio.wav") is None
    asr = json.loads((results / "asr_audio" / "transcript.json").read_text())
    assert asr["source"] == "whisperx"
    assert "using sidecar" not in (results / "asr_audio" / "logs" / "transcribe.log").read_text()


def test_run_ends_with_a_summary_of_every_product(finished_run: Path) -> None:
    out = (finished_run / "first_run.out").read_text()
    summary = out[out.index("tribeflow outputs (under results/):") :]
    for name in ("speech_video", "speech_audio", "asr_audio", "story", "silent clip"):
        block = summary[summary.index(f"\n  {name}\n") :]
        for rel in ("predictions.zarr/", "rois/roi_mean.tsv", "nifti/predictions.nii.gz",
                    "nifti/predictions.lh.func.gii", "plots/", "report.html"):  # fmt: skip
            assert f"results/{name}/{rel}" in block, (name, rel)
    assert "movie.mp4" not in summary  # products.movie is off in the demo
    uri = (finished_run / "results").resolve().as_uri()
    assert f"Open a report.html in a web browser: {uri}/" in summary


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    assert planned_jobs(finished_run) == {}


def test_touch_without_change_reruns_nothing(finished_run: Path) -> None:
    # Snakemake 9 compares input checksums: a new mtime alone is not a change.
    stimulus = finished_run / "stimuli" / "speech_audio.wav"
    now = time.time() + 5
    os.utime(stimulus, (now, now))
    assert planned_jobs(finished_run) == {}


def test_changing_one_stimulus_reruns_only_its_jobs(finished_run: Path) -> None:
    stimulus = finished_run / "stimuli" / "speech_audio.wav"
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
         "sine=frequency=330:duration=4", str(stimulus)],
        check=True,
    )  # fmt: skip
    planned = planned_jobs(finished_run)
    assert set().union(*planned.values()) == {"speech_audio"}
    assert {"extract_audio", "transcribe", "predict", "roi_table", "plots"} <= set(planned)


def test_changing_one_output_option_reruns_only_that_rule(finished_run: Path) -> None:
    config_path = finished_run / "test_config.yaml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    config["products"]["top_k"] = 3
    config_path.write_text(yaml.safe_dump(config))
    try:
        planned = planned_jobs(finished_run)
    finally:
        config_path.write_text(original)
    # speech_audio's jobs are pending from the previous test; every other stimulus
    # must rerun exactly its roi_table job.
    others = {"speech_video", "asr_audio", "story", "silent clip"}
    assert planned["roi_table"] >= others
    assert all(not (stims & others) for rule, stims in planned.items() if rule != "roi_table")


def test_changing_the_model_reruns_features_and_predictions_only(finished_run: Path) -> None:
    config_path = finished_run / "test_config.yaml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    config["checkpoint"] = config["checkpoint"].replace("tribe", "tribe_mini")
    config_path.write_text(yaml.safe_dump(config))
    try:
        planned = planned_jobs(finished_run)
    finally:
        config_path.write_text(original)
    untouched = {"speech_video", "asr_audio", "story", "silent clip"}  # speech_audio changed
    for rule in ("extract_text_features", "extract_audio_features", "predict", "roi_table"):
        assert planned[rule] >= untouched, rule
    assert planned["extract_video_features"] >= {"speech_video", "silent clip"}
    for rule in ("extract_audio", "synthesize_speech", "transcribe", "annotate_words"):
        assert not (planned.get(rule, set()) & untouched), rule


def test_text_context_stride_reruns_text_features_and_is_recorded(finished_run: Path) -> None:
    from tribe_core.io.zarr_store import read_feature_store

    config_path = finished_run / "test_config.yaml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    config.setdefault("features", {})["text_context_stride"] = 4
    config_path.write_text(yaml.safe_dump(config))
    target = "results/story/features/text.zarr"
    try:
        planned = planned_jobs(finished_run)
        assert planned["extract_text_features"] >= {"story", "speech_video"}
        for rule in ("extract_audio_features", "extract_video_features", "transcribe"):
            assert not (planned.get(rule, set()) & {"story", "speech_video"}), rule
        snakemake(finished_run, "--cores", "2", target)
        _, attrs = read_feature_store(finished_run / target)
        assert attrs["context_stride"] == 4
    finally:
        config_path.write_text(original)


def _rule_directives() -> dict[str, set[str]]:
    """Rule name -> the directives (``log``, ``threads``…) its block in ``rules/*.smk`` sets."""
    return {
        name: set(directives)
        for path in sorted((REPO / "rules").glob("*.smk"))
        for name, directives in rule_blocks(path.read_text(encoding="utf-8")).items()
    }


def test_snakemake_lint_is_clean_and_every_rule_is_complete(workflow_dir: Path) -> None:
    """``snakemake --lint`` finds nothing; every stage rule sets log, benchmark, resources
    and threads (cached rules excepted for benchmark, which Snakemake forbids there)."""
    proc = snakemake(workflow_dir, "--lint", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in out, out[-4000:]
    assert "your workflow is in a good condition" in out
    rules = _rule_directives()
    assert len(rules) >= 15 and "predict" in rules and "report" in rules
    missing = {}
    for name, keys in rules.items():
        wanted = {"log", "resources", "threads"} | (set() if "cache" in keys else {"benchmark"})
        if wanted - keys:
            missing[name] = sorted(wanted - keys)
    assert not missing, f"rules without directives: {missing}"
    # the three feature rules, made by one loop in rules/features.smk
    assert rules["extract_{modality}_features"] >= {"log", "threads", "resources", "cache"}


def test_bad_stimulus_folder_fails_before_any_job(workflow_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "slides.pptx").write_text("not a stimulus")
    proc = snakemake(workflow_dir, "--cores", "1", "--config", f"stimuli={bad}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "slides.pptx" in out and "unsupported suffix" in out
    assert not (workflow_dir / "results" / "slides").exists()


@pytest.mark.slow  # two whole projects: about 150 s on a 2-core box
def test_feature_cache_is_shared_between_projects(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
    """The same stimulus with the same model is extracted once across two projects."""
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    shutil.copy(demo_stimuli / "speech_audio.wav", stimuli)
    cache = tmp_path / "cache"
    cache.mkdir()
    target = "results/speech_audio/features/audio.zarr"
    projects = []
    for name in ("project_a", "project_b"):
        work = make_workdir(tmp_path / name, demo_models, stimuli)
        proc = snakemake(
            work, "--cores", "2", "--cache", target, env={"SNAKEMAKE_OUTPUT_CACHE": str(cache)}
        )
        projects.append((work, proc.stdout + proc.stderr))
    (work_a, out_a), (work_b, out_b) = projects
    assert "to cache" in out_a
    assert "from cache" in out_b
    # project b never ran the extractor: its log is empty, its store is the cached one
    log_a = work_a / "results/speech_audio/logs/extract_audio_features.log"
    log_b = work_b / "results/speech_audio/logs/extract_audio_features.log"
    assert "audio features" in log_a.read_text()
    assert not log_b.exists() or log_b.read_text() == ""
    from tribe_core.io.zarr_store import read_feature_store

    # Snakemake links each entry of a cached directory output (plus its own timestamp)
    served = [p for p in (work_b / target).iterdir() if p.name != ".snakemake_timestamp"]
    assert served and all(p.is_symlink() and str(cache) in str(p.resolve()) for p in served)
    features_a, attrs_a = read_feature_store(work_a / target)
    features_b, attrs_b = read_feature_store(work_b / target)
    np.testing.assert_array_equal(features_a, features_b)
    assert attrs_b["timing"] == attrs_a["timing"]  # the very computation of project a


def test_mini_layout_runs_end_to_end(tmp_path: Path, demo_models: Path, demo_stimuli: Path) -> None:
    """config/mini.yaml: the mini variant (Qwen3 text, one hidden state at 2/3 depth, mean)
    from its checkpoint, end to end."""
    from tribe_core.encoder import load_config_yaml
    from tribe_core.io.zarr_store import read_feature_store
    from tribe_core.segments import read_predictions

    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    shutil.copy(demo_stimuli / "story.txt", stimuli)
    work = make_workdir(tmp_path / "mini", demo_models, stimuli, checkpoint="tribe_mini")
    # config/mini.yaml as shipped, with only the local parts replaced: the tiny mini
    # checkpoint, the demo speech models and the CPU.
    demo = yaml.safe_load((work / "test_config.yaml").read_text())
    local = {
        "stimuli": "stimuli",
        "checkpoint": str(demo_models / "tribe_mini"),
        "transcription": demo["transcription"],
        "features": {"device": "cpu", "batch_size": 4},
        "predict": {"device": "cpu"},
        "products": demo["products"],
    }
    (work / "mini_local.yaml").write_text(yaml.safe_dump(local))
    snakemake(
        work, "--configfile", "config/mini.yaml", "mini_local.yaml", "--cores", "2",
        "results/story/predictions.zarr",
    )  # fmt: skip
    data = load_config_yaml(demo_models / "tribe_mini" / "config.yaml")["data"]
    assert "qwen3" in str(data["text_feature"]).lower()
    text, attrs = read_feature_store(work / "results/story/features/text.zarr")
    assert text is not None and text.shape[0] == 1  # one layer group in the mini layout
    result = read_predictions(work / "results/story/predictions.zarr")
    assert result.predictions.shape[1] == 20484 and result.predictions.shape[0] >= 1

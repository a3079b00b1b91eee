"""tribe_core.api: the workflow itself, run for one stimulus from Python; the cache reused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, synthetic_atlas_dir
from tests.workflow_helpers import SNAKEMAKE
from tribe_core.api import (
    WorkflowRunError,
    count_jobs_run,
    predict,
    read_prediction,
    selection_vertices,
)
from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.products import N_VERTICES, N_VERTICES_PER_HEMI
from tribe_core.segments import read_predictions


def _config(demo_models: Path, **overrides: object) -> dict:
    """config/demo.yaml with absolute model paths and the synthetic HCP-style atlas."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config.update(
        stimuli="stimuli",
        checkpoint=str(demo_models / "tribe"),
        transcription={
            **config["transcription"],
            "model": str(demo_models / "whisper" / "asr"),
            "align_model": str(demo_models / "whisper" / "align"),
        },
        products={**config["products"], "atlas_dir": str(synthetic_atlas_dir())},
    )
    config.update(overrides)
    return config


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def project(tmp_path_factory, demo_models: Path, demo_stimuli: Path) -> Path:
    """A project folder (not the repository) with stimuli/ and config.yaml."""
    root = tmp_path_factory.mktemp("api_project")
    shutil.copytree(demo_stimuli, root / "stimuli")
    (root / "config.yaml").write_text(yaml.safe_dump(_config(demo_models)))
    return root


@pytest.fixture(scope="module")
def first_call(project: Path):
    """The first predict() of story.txt, and the mtimes of its results right after."""
    pred = predict(
        project / "stimuli" / "story.txt", config=project / "config.yaml", workdir=project, cores=2
    )
    return pred, _mtimes(project / "results" / "story")


def test_first_call_runs_the_workflow_and_returns_the_store(project: Path, first_call) -> None:
    pred, _ = first_call
    store = project / "results" / "story" / "predictions.zarr"
    assert pred.path == store and pred.stimulus == "story"
    # One log per job that ran: the count comes from Snakemake's own progress lines.
    logs = list((project / "results" / "story" / "logs").glob("*.log"))
    assert pred.jobs_run == len(logs) >= 4
    stored = read_predictions(store)
    kept = stored.trs[stored.trs["kept"]]
    assert pred.data.dtype == np.float32 and pred.data.shape == (len(kept), N_VERTICES)
    np.testing.assert_array_equal(pred.data, stored.predictions)
    np.testing.assert_array_equal(pred.vertices, np.arange(N_VERTICES))
    np.testing.assert_array_equal(pred.times_s, kept["tr_start_s"].to_numpy())
    np.testing.assert_allclose(pred.response_times_s - pred.times_s, stored.hemodynamic_offset_s)
    assert pred.tr_s == stored.tr_s and np.all(np.diff(pred.times_s) > 0)
    assert np.isfinite(pred.data).all() and pred.data.std() > 0


def test_second_call_does_no_work(project: Path, first_call) -> None:
    pred, mtimes = first_call
    again = predict(
        project / "stimuli" / "story.txt", config=project / "config.yaml", workdir=project, cores=2
    )
    assert again.jobs_run == 0
    assert _mtimes(project / "results" / "story") == mtimes  # not one file rewritten
    np.testing.assert_array_equal(again.data, pred.data)


def test_a_workflow_run_over_the_folder_reuses_the_api_outputs(project: Path, first_call) -> None:
    import subprocess

    out = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml",
         "--cores", "1", "--dry-run", "results/story/predictions.zarr"],
        cwd=project, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert count_jobs_run(out) == 0, out[-2000:]


def test_a_dict_config_and_a_vertex_mask(project: Path, demo_models: Path, first_call) -> None:
    pred, _ = first_call
    mask = np.random.default_rng(0).random(N_VERTICES) < 0.1
    sub = predict(
        str(project / "stimuli" / "story.txt"),
        config=_config(demo_models),
        workdir=project,
        selection=mask,
    )
    assert sub.jobs_run == 0  # the same config as a dict: the same cache
    np.testing.assert_array_equal(sub.vertices, np.flatnonzero(mask))
    np.testing.assert_array_equal(sub.data, pred.data[:, mask])


def test_area_names_select_the_atlas_vertices(
    project: Path, synthetic_atlas: Path, first_call
) -> None:
    from tribe_core.products.atlas import load_hcp_mmp1

    pred, _ = first_call
    atlas = load_hcp_mmp1(synthetic_atlas)  # the config's products.atlas_dir
    story = project / "stimuli" / "story.txt"
    v1 = predict(story, config=project / "config.yaml", workdir=project, selection="V1")
    assert v1.jobs_run == 0
    np.testing.assert_array_equal(v1.vertices, atlas.vertices("V1"))
    np.testing.assert_array_equal(v1.data, pred.data[:, atlas.vertices("V1")])
    left = atlas.vertices("V1", "left")
    assert 0 < len(left) < len(v1.vertices) and (left < N_VERTICES_PER_HEMI).all()
    extra = np.zeros(N_VERTICES, dtype=bool)
    extra[N_VERTICES - 1] = True
    union = predict(
        story, config=project / "config.yaml", workdir=project, selection=["L_V1_ROI", extra]
    )
    np.testing.assert_array_equal(union.vertices, np.append(left, N_VERTICES - 1))
    np.testing.assert_array_equal(union.data, pred.data[:, union.vertices])
    with pytest.raises(TribeInputError, match="'Nowhere' matches no HCP-MMP1 area"):
        selection_vertices(["V1", "Nowhere"], synthetic_atlas)


def test_a_list_returns_a_dict_in_the_given_order(project: Path, first_call, tmp_path) -> None:
    # A second text stimulus outside the project: only its jobs run.
    other = tmp_path / "greeting.txt"
    other.write_text("Hello there. This is a second short story about a quiet harbour.\n")
    preds = predict(
        [project / "stimuli" / "story.txt", other],
        config=project / "config.yaml",
        workdir=project,
        cores=2,
    )
    assert list(preds) == ["story", "greeting"]
    logs = list((project / "results" / "greeting" / "logs").glob("*.log"))
    assert preds["greeting"].jobs_run == len(logs) >= 4
    assert preds["greeting"].data.shape[1] == N_VERTICES
    np.testing.assert_array_equal(preds["story"].data, first_call[0].data)
    np.testing.assert_array_equal(
        preds["greeting"].data, read_prediction(project / "results/greeting/predictions.zarr").data
    )


def test_a_failing_job_raises_with_the_workflow_output(demo_models: Path, tmp_path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    new_project = tmp_path / "new" / "project"  # made by predict(), as a notebook user expects
    with pytest.raises(WorkflowRunError, match="the workflow failed") as info:
        predict(bad, config=_config(demo_models), workdir=new_project, cores=1)
    assert "broken" in str(info.value) and "Error in rule" in str(info.value)
    assert (new_project / "results" / "broken" / "logs").is_dir()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"predict": {"precision": "fp64"}}, "invalid config"),
        ({"no_such_key": 1}, "unknown key 'no_such_key'"),
        ({"products": {"atlas_dir": None}}, "needs the HCP-MMP1 atlas, and none was found"),
        ({"products": {"atlas_dir": "no/such/folder"}}, "does not exist"),
    ],
)
def test_bad_config_fails_before_any_job(
    demo_models: Path, demo_stimuli: Path, tmp_path: Path, monkeypatch, change, message
) -> None:
    # No atlas cache either: a fresh home and cache folder.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SUBJECTS_DIR", raising=False)
    config = {**_config(demo_models), **change}
    with pytest.raises(TribeConfigError, match=message):
        predict(demo_stimuli / "story.txt", config=config, workdir=tmp_path, selection="V1")
    assert not (tmp_path / ".snakemake").exists() and not (tmp_path / "results").exists()
    assert not list(tmp_path.glob(".tribeflow-api-*")), "files written before the checks"


def test_bad_stimuli_fail_before_any_job(demo_models: Path, tmp_path: Path) -> None:
    config = _config(demo_models)
    notes = tmp_path / "notes.docx"
    notes.write_text("x")
    with pytest.raises(TribeInputError, match=r"notes\.docx': unsupported suffix '\.docx'"):
        predict(notes, config=config, workdir=tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "same.txt").write_text("Two files with one stem.")
    with pytest.raises(TribeInputError, match="(?s)2 bad stimulus files.*share the name 'same'"):
        predict(
            [tmp_path / "a" / "same.txt", tmp_path / "b" / "same.txt"],
            config=config,
            workdir=tmp_path,
        )
    with pytest.raises(TribeInputError, match="missing.wav': file does not exist"):
        predict(tmp_path / "missing.wav", config=config, workdir=tmp_path)
    with pytest.raises(TribeConfigError, match="does not exist"):
        predict(tmp_path / "a" / "same.txt", config=tmp_path / "nope.yaml", workdir=tmp_path)
    with pytest.raises(TribeConfigError, match="-n"):
        predict(tmp_path / "a" / "same.txt", config=config, workdir=tmp_path, snakemake_args=["-n"])
    assert not (tmp_path / ".snakemake").exists()
    assert not list(tmp_path.glob(".tribeflow-api-*")), "files written before the checks"


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (np.ones(100, dtype=bool), r"shape \(100,\)"),
        (np.ones(N_VERTICES, dtype=np.int64), "dtype int64"),
        (np.zeros(N_VERTICES, dtype=bool), "selects no vertex"),
        ([], "empty list"),
        ([3], "got 3"),
    ],
)
def test_bad_selections(selection, message: str) -> None:
    with pytest.raises(TribeInputError, match=message):
        selection_vertices(selection)


def test_names_without_an_atlas_say_what_to_set() -> None:
    with pytest.raises(TribeConfigError, match="products.atlas_dir"):
        selection_vertices("V1", None)
    mask = np.zeros(N_VERTICES, dtype=bool)
    mask[[5, 7]] = True
    np.testing.assert_array_equal(selection_vertices(mask), [5, 7])  # masks need no atlas
    np.testing.assert_array_equal(selection_vertices(list(mask)), [5, 7])


def test_count_jobs_run_reads_snakemake_progress() -> None:
    assert count_jobs_run("Building DAG of jobs...\nNothing to be done (all requested") == 0
    assert count_jobs_run("1 of 3 steps (33%) done\n...\n3 of 3 steps (100%) done\n") == 3
    assert count_jobs_run("1 of 1 step (100%) done\n") == 1
    with pytest.raises(WorkflowRunError, match="could not read"):
        count_jobs_run("Building DAG of jobs...\n")

"""The end-of-run summary, on a results folder made by the real stages."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tribe_core.segments import PredictionResult, write_predictions
from tribe_core.stages import (
    run_annotate_words,
    run_plots,
    run_report,
    run_roi_table,
    run_synthesize_speech,
    run_volumes,
)
from tribe_core.summary import format_run_summary, print_run_summary, stimulus_products

STORY = "The cat sat. It slept.\n"  # 5 words


def _make_stimulus_results(base: Path, text: Path, atlas_dir: Path | None, movie: bool) -> None:
    """``results/{stimulus}/`` of a text stimulus, made by the stage functions the rules run."""
    run_synthesize_speech(
        text, base / "audio.wav", base / "media.json", base / "transcript.json", language="en"
    )
    run_annotate_words(base / "transcript.json", base / "media.json", base / "events.tsv")
    n_trs = 3
    trs = pd.DataFrame(
        {
            "tr_index": np.arange(n_trs),
            "tr_start_s": np.arange(n_trs, dtype=float),
            "response_time_s": np.arange(n_trs, dtype=float) + 5.0,
            "segment": np.zeros(n_trs, dtype=np.int64),
            "kept": np.ones(n_trs, dtype=bool),
            "prediction_row": np.arange(n_trs),
        }
    )
    rng = np.random.default_rng(0)
    predictions = rng.standard_normal((n_trs, 20484)).astype(np.float32)
    write_predictions(base / "predictions.zarr", PredictionResult(predictions, trs), {})
    if atlas_dir is not None:
        run_roi_table(
            base / "predictions.zarr", base / "rois", atlas_dir=str(atlas_dir), rois=None, top_k=3
        )
    run_volumes(
        base / "predictions.zarr",
        base / "nifti" / "predictions.nii.gz",
        base / "nifti",
        smoothing_fwhm_mm=None,
    )
    run_plots(
        base / "predictions.zarr",
        base / "plots",
        trs=[0],
        views=["lateral"],
        cmap="cold_hot",
        movie=movie,
    )
    run_report(
        base.name,
        base / "predictions.zarr",
        base / "events.tsv",
        base / "plots",
        base / "report.html",
        text,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, synthetic_atlas: Path) -> Path:
    """``results/`` with ``full`` (every product, movie included) and ``no atlas`` (no ROI
    tables, no movie: what a run without an HCP-MMP1 atlas and ``products.movie`` off makes)."""
    root = tmp_path_factory.mktemp("summary")
    text = root / "story.txt"
    text.write_text(STORY, encoding="utf-8")
    results = root / "results"
    _make_stimulus_results(results / "full", text, synthetic_atlas, movie=True)
    _make_stimulus_results(results / "no atlas", text, None, movie=False)
    return results


def test_every_product_with_its_path(results: Path) -> None:
    base = results / "full"
    products = stimulus_products(results, "full")
    listed = [(p.label, p.path.relative_to(base).as_posix(), p.note) for p in products]
    assert listed == [
        ("transcript", "transcript.json", "5 words, synthesis"),
        ("predictions", "predictions.zarr", ""),
        ("ROI tables", "rois/roi_timeseries.tsv", ""),
        ("ROI tables", "rois/roi_mean.tsv", ""),
        ("ROI tables", "rois/roi_top.tsv", ""),
        ("NIfTI", "nifti/predictions.nii.gz", ""),
        ("GIFTI", "nifti/predictions.lh.func.gii", ""),
        ("GIFTI", "nifti/predictions.rh.func.gii", ""),
        ("plots", "plots", f"{len(list((base / 'plots').glob('*.png')))} PNG"),
        ("movie", "plots/movie.mp4", ""),
        ("report", "report.html", ""),
    ]
    assert listed[8][2] != "0 PNG"
    assert all(p.path.exists() for p in products)


def test_absent_products_are_not_listed(results: Path) -> None:
    labels = [p.label for p in stimulus_products(results, "no atlas")]
    assert labels == [
        "transcript", "predictions", "NIfTI", "GIFTI", "GIFTI", "plots", "report"
    ]  # fmt: skip
    assert stimulus_products(results, "never run") == []


def test_summary_text_names_paths_and_how_to_open_the_report(results: Path) -> None:
    text = format_run_summary(results, ["full", "no atlas", "never run"])
    lines = text.splitlines()
    assert lines[0] == f"tribeflow outputs (under {results}/):"
    full = lines[lines.index("  full") + 1 : lines.index("  no atlas")]
    assert full[0] == f"    transcript   {results}/full/transcript.json (5 words, synthesis)"
    assert full[2] == f"    ROI tables   {results}/full/rois/roi_timeseries.tsv"
    assert full[3] == f"                 {results}/full/rois/roi_mean.tsv"  # label once
    assert f"    predictions  {results}/full/predictions.zarr/" in full
    assert f"    movie        {results}/full/plots/movie.mp4" in full
    assert full[-1] == f"    report       {results}/full/report.html"
    no_atlas = lines[lines.index("  no atlas") + 1 : lines.index("  never run")]
    assert not any("rois" in line or "ROI" in line or "movie" in line for line in no_atlas)
    assert no_atlas[-1] == f"    report       {results}/no atlas/report.html"
    assert lines[lines.index("  never run") + 1] == "    (no products yet)"
    # The first report, as a browser URI (the space quoted) and as a shell command.
    uri = (results / "full" / "report.html").resolve().as_uri()
    assert lines[-1].startswith(f"Open a report.html in a web browser: {uri} ")
    assert f"`xdg-open {results}/full/report.html`" in lines[-1]
    only_spaced = format_run_summary(results, ["no atlas"]).splitlines()[-1]
    assert "no%20atlas/report.html" in only_spaced
    assert f"`xdg-open '{results}/no atlas/report.html'`" in only_spaced


def test_without_any_report_it_says_so(results: Path, tmp_path: Path) -> None:
    lines = format_run_summary(results, ["never run"]).splitlines()
    assert lines[-1] == "No report.html exists yet."


def test_unreadable_transcript_is_listed_without_a_count(results: Path, tmp_path: Path) -> None:
    base = tmp_path / "results" / "broken"
    base.mkdir(parents=True)
    shutil.copytree(results / "full" / "predictions.zarr", base / "predictions.zarr")
    (base / "transcript.json").write_text('{"segments": [', encoding="utf-8")  # cut short
    listed = [(p.label, p.note) for p in stimulus_products(tmp_path / "results", "broken")]
    assert listed == [("transcript", ""), ("predictions", "")]


def test_print_goes_to_the_given_stream_or_stdout(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    print_run_summary(results, ["full"], file=stream)
    assert stream.getvalue() == format_run_summary(results, ["full"])
    print_run_summary(str(results), ["full"])
    assert capsys.readouterr().out == stream.getvalue()


def test_long_runs_list_the_first_stimuli_and_count_the_rest(results: Path) -> None:
    text = format_run_summary(results, ["full", "no atlas", "never run"], max_listed=2)
    lines = text.splitlines()
    assert "  full" in lines and "  no atlas" in lines and "  never run" not in lines
    assert any(line.startswith("  ... and 1 more stimuli, each under ") for line in lines)
    assert lines[-1].startswith("Open a report.html")
    assert "more stimuli" not in format_run_summary(results, ["full", "no atlas"], max_listed=2)

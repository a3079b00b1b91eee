"""The end-of-run summary: per stimulus, the products on disk and how to open the report.

The Snakefile's ``onsuccess:`` handler calls :func:`print_run_summary`. Only files
that exist are listed: a product left out of a run (ROI tables without an atlas, the
movie when ``products.movie`` is off, a stimulus not among the run's targets) is simply
not named.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# (label, path under results/{stimulus}/), in the order of the data flow.
_PRODUCT_FILES: tuple[tuple[str, str], ...] = (
    ("predictions", "predictions.zarr"),
    ("ROI tables", "rois/roi_timeseries.tsv"),
    ("ROI tables", "rois/roi_mean.tsv"),
    ("ROI tables", "rois/roi_top.tsv"),
    ("NIfTI", "nifti/predictions.nii.gz"),
    ("GIFTI", "nifti/predictions.lh.func.gii"),
    ("GIFTI", "nifti/predictions.rh.func.gii"),
    ("plots", "plots"),  # listed when it holds a PNG, with their count
    ("movie", "plots/movie.mp4"),
    ("contributions", "contributions"),
    ("evaluation", "evaluation"),
    ("report", "report.html"),
)


@dataclass(frozen=True)
class Product:
    """One output of a stimulus: what it is, where it is, and a short note."""

    label: str
    path: Path
    note: str = ""


def _transcript_note(path: Path) -> str:
    """``"13 words, sidecar"``; empty when the transcript cannot be read as one."""
    try:
        transcript = json.loads(path.read_text(encoding="utf-8"))
        segments = transcript["segments"]
        n_words = sum(len(segment.get("words") or []) for segment in segments)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""  # a summary reports; the stages that read the transcript check it
    source = transcript.get("source")
    word = "word" if n_words == 1 else "words"
    return f"{n_words} {word}, {source}" if source else f"{n_words} {word}"


def stimulus_products(results_dir: str | Path, stimulus: str) -> list[Product]:
    """The products of one stimulus that exist under ``results_dir/stimulus``.

    Parameters
    ----------
    results_dir
        The run's ``results_dir``.
    stimulus
        The stimulus name (file stem).

    Returns
    -------
    list of Product
        Transcript (with its word count and source), predictions, ROI tables,
        NIfTI/GIFTI, plots (the folder, with its PNG count), movie, contributions,
        evaluation and report, in that order; absent ones are left out.
    """
    base = Path(results_dir) / stimulus
    products = []
    transcript = base / "transcript.json"
    if transcript.is_file():
        products.append(Product("transcript", transcript, _transcript_note(transcript)))
    for label, relative in _PRODUCT_FILES:
        path = base / relative
        if label == "plots":
            n_pngs = len(list(path.glob("*.png")))
            if n_pngs:
                products.append(Product(label, path, f"{n_pngs} PNG"))
        elif path.exists():
            products.append(Product(label, path))
    return products


MAX_LISTED = 20


def format_run_summary(
    results_dir: str | Path, stimuli: Iterable[str], max_listed: int = MAX_LISTED
) -> str:
    """The run summary as text: one block per stimulus, then how to open a report.

    Parameters
    ----------
    results_dir
        The run's ``results_dir``; paths are printed under it as given (relative
        paths are relative to the workflow's working directory).
    stimuli
        Stimulus names, in the order to list them.
    max_listed
        Stimuli listed product by product; the rest are counted in one line (a run of
        1,000 stimuli would otherwise print about 10,000 lines).

    Returns
    -------
    str
        Lines ending in a newline. A stimulus without any product says so.
    """
    lines = [f"tribeflow outputs (under {Path(results_dir)}/):"]
    reports = []
    names = list(stimuli)
    for stimulus in names[:max_listed]:
        lines.append(f"  {stimulus}")
        products = stimulus_products(results_dir, stimulus)
        if not products:
            lines.append("    (no products yet)")
        width = max((len(p.label) for p in products), default=0)
        previous = None
        for product in products:
            label = "" if product.label == previous else product.label
            shown = f"{product.path}/" if product.path.is_dir() else str(product.path)
            note = f" ({product.note})" if product.note else ""
            lines.append(f"    {label:<{width}}  {shown}{note}")
            previous = product.label
            if product.label == "report":
                reports.append(product.path)
    if len(names) > max_listed:
        lines.append(
            f"  ... and {len(names) - max_listed} more stimuli, each under "
            f"{Path(results_dir)}/<stimulus>/ with the same layout (docs/outputs.md)"
        )
    if reports:
        first = reports[0]
        lines.append(
            f"Open a report.html in a web browser: {first.resolve().as_uri()} "
            f"(or `xdg-open {shlex.quote(str(first))}`; `open` on macOS)"
        )
    else:
        lines.append("No report.html exists yet.")
    return "\n".join(lines) + "\n"


def print_run_summary(
    results_dir: str | Path, stimuli: Iterable[str], file: TextIO | None = None
) -> None:
    """Print :func:`format_run_summary` (to standard output by default)."""
    (file or sys.stdout).write(format_run_summary(results_dir, stimuli))

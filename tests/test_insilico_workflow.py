"""In-silico stages through the workflow: contrasts, group tables, fMRIPrep evaluation, caching."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.test_insilico_fmriprep import write_bold
from tests.workflow_helpers import make_workdir, snakemake

TEXTS = {
    "s0": "The cat sat on the warm mat. It watched the birds outside the window all day.",
    "s1": "A red car drove down the long road. The driver sang along to the radio.",
    "s2": "Rain fell on the quiet town. People opened umbrellas and hurried home.",
    "s3": "The chef chopped onions and garlic. Soon the kitchen smelled of soup.",
    "s4": "Children played football in the park. The ball rolled into the pond.",
    "s5": "An old clock ticked in the hallway. Nobody remembered who had wound it.",
}
LABELS = {"s0": "A", "s1": "A", "s2": "A", "s3": "B", "s4": "B", "s5": "B"}
CONTRASTS = {"a_vs_b": {"plus": ["A"], "minus": "B"}, "a_vs_zero": {"plus": "A"}}
TARGETS = [
    "results/insilico/contrasts/a_vs_b",
    "results/insilico/contrasts/a_vs_zero",
    "results/insilico/group/stimulus_roi.tsv",
    "results/insilico/group/rdm.tsv",
]


def _sheet(folder: Path, labels: dict[str, str], texts: dict[str, str] = TEXTS) -> None:
    rows = ["stimulus\tpath\tcondition\tn_words"]
    rows += [f"{n}\t{n}.txt\t{labels[n]}\t{len(texts[n].split())}" for n in labels]
    (folder / "samples.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def _update_config(work: Path, **changes: object) -> None:
    path = work / "test_config.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **changes}))


def _planned(work: Path, *targets: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of the jobs a dry run would execute."""
    out = snakemake(work, "--dry-run", "--cores", "1", *targets).stdout
    jobs, rule = set(), None
    for line in out.splitlines():
        line = line.strip()
        if match := re.match(r"^(?:local)?rule (\w+):", line):
            rule = match.group(1)
            jobs.add((rule, ""))
        elif (match := re.match(r"^wildcards: (.+)$", line)) and rule:
            jobs.discard((rule, ""))
            jobs.add((rule, match.group(1)))
    return jobs


def test_insilico_workflow_contrasts_group_evaluation_and_reruns(
    tmp_path: Path, demo_models: Path
) -> None:
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    for name, text in TEXTS.items():
        (stimuli / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    _sheet(stimuli, LABELS)
    work = make_workdir(
        tmp_path / "work",
        demo_models,
        stimuli,
        contrasts=CONTRASTS,
        insilico={"n_permutations": 50, "seed": 3, "correction": "fdr"},
    )
    _update_config(work, stimuli="stimuli/samples.tsv")  # the sheet, not the folder
    snakemake(work, "--cores", "2", *TARGETS)

    contrast = work / "results/insilico/contrasts/a_vs_b"
    summary = pd.read_csv(contrast / "summary.tsv", sep="\t").iloc[0]
    assert summary["description"] == "A - B" and summary["n_stimuli"] == 6
    assert (summary["n_plus"], summary["n_minus"]) == (3, 3)
    # 3 vs 3 stimuli have 20 relabellings, fewer than the 50 asked for: all are used.
    assert summary["n_permutations"] == 20 and bool(summary["exhaustive"])
    assert summary["correction"] == "fdr" and summary["seed"] == 3
    vertices = pd.read_csv(contrast / "vertices.tsv", sep="\t")
    assert len(vertices) == 20484 and vertices["p_uncorrected"].min() >= 1 / 20
    assert {"rois.tsv", "rois_top.tsv", "t.nii.gz", "t_thresholded.png"} <= {
        p.name for p in contrast.iterdir()
    }
    zero = pd.read_csv(work / "results/insilico/contrasts/a_vs_zero/summary.tsv", sep="\t")
    assert zero.loc[0, "statistic"] == "one-sample" and zero.loc[0, "n_permutations"] == 8
    matrix = pd.read_csv(work / "results/insilico/group/stimulus_roi.tsv", sep="\t")
    assert matrix["stimulus"].tolist() == list(TEXTS) and "L_FFC" in matrix.columns
    rdm = pd.read_csv(work / "results/insilico/group/rdm.tsv", sep="\t").set_index("stimulus")
    assert rdm.shape == (6, 6) and np.allclose(np.diag(rdm.to_numpy()), 0)
    assert (work / "results/insilico/group/rdm.png").stat().st_size > 5_000
    # The effect map is the difference of the conditions' mean responses.
    responses = {n: np.load(work / f"results/{n}/insilico/response.npz")["response"] for n in TEXTS}
    expected = np.mean([responses[n] for n in ("s0", "s1", "s2")], 0) - np.mean(
        [responses[n] for n in ("s3", "s4", "s5")], 0
    )
    np.testing.assert_allclose(vertices["effect"], expected, atol=1e-5)

    # Nothing to do once done.
    assert not _planned(work, *TARGETS)
    # A relabelled stimulus reruns only the contrast whose groups change.
    stimuli = work / "stimuli"
    _sheet(stimuli, {**LABELS, "s5": "C"})
    assert _planned(work, *TARGETS) == {("insilico_contrast", "contrast=a_vs_b")}
    # A new stimulus (condition C, in no contrast) reruns its own jobs and the group tables.
    new_text = "A new sentence about the sea and the sky."
    (stimuli / "s6.txt").write_text(new_text + "\n", encoding="utf-8")
    _sheet(stimuli, {**LABELS, "s6": "C"}, {**TEXTS, "s6": new_text})
    planned = _planned(work, *TARGETS)
    rules = {rule for rule, _ in planned}
    assert {"predict", "insilico_response", "insilico_roi_matrix", "insilico_rdm"} <= rules
    assert {w for _, w in planned if w} == {"stimulus=s6"}, planned
    assert "insilico_contrast" not in rules
    _sheet(stimuli, LABELS)
    (stimuli / "s6.txt").unlink()

    # The lab's data: two fMRIPrep runs of task "story" showing s0 from their start.
    store = work / "results/s0/predictions.zarr"
    from tribe_core.segments import read_predictions

    result = read_predictions(store)
    offset_samples = int(round(result.hemodynamic_offset_s / result.tr_s))
    kept = result.trs[result.trs["kept"]]["tr_index"].to_numpy()
    deriv = tmp_path / "fmriprep"
    rng = np.random.default_rng(0)
    for run in (1, 2):
        n_samples = len(result.trs) + offset_samples + 3
        bold = 0.05 * rng.standard_normal((n_samples, 20484))
        bold[kept + offset_samples] += result.predictions
        left = (
            deriv
            / "sub-01"
            / "func"
            / f"sub-01_task-story_run-{run}_hemi-L_space-fsaverage5_bold.func.gii"
        )
        write_bold(left, bold)
        left.with_name(left.name.replace(".func.gii", ".json")).write_text(
            json.dumps({"RepetitionTime": result.tr_s})
        )
    _update_config(
        work, fmriprep={"dir": str(deriv), "runs": {"task-story": "s0"}, "detrend": False}
    )
    target = "results/s0/insilico/fmriprep"
    assert _planned(work, target) == {("insilico_fmriprep_evaluation", "stimulus=s0")}
    snakemake(work, "--cores", "2", target)
    evaluation = pd.read_csv(work / target / "summary.tsv", sep="\t").set_index("metric")["value"]
    assert evaluation["n_occurrences"] == 2 and evaluation["n_rows"] == len(kept)
    assert evaluation["mean_r"] > 0.9 and evaluation["mean_noise_ceiling"] > 0.9

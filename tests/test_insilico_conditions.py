"""Conditions and covariates of the sample sheet, its JSON schema, and contrast parsing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from tests.conftest import REPO
from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.insilico.conditions import (
    contrast_design,
    parse_contrasts,
    read_sample_conditions,
)

SCHEMA = str(REPO / "config" / "schema" / "samples.schema.yaml")
SHEET = (
    "stimulus\tpath\tlanguage\tcondition\tluminance\tduration_s\n"
    "face1\tf1.mp4\ten\tfaces\t0.5\t4\n"
    "face2\tf2.mp4\t\tfaces\t0.7\t4\n"
    "place1\tp1.mp4\t\tplaces\t0.2\t4\n"
    "place2\tp2.mp4\t\tplaces\t\t4\n"
    "body1\tb1.mp4\t\tbodies\t0.4\t4\n"
    "noise\tn.wav\t\t\t0.1\t2\n"
)


def _sheet(tmp_path: Path, text: str = SHEET) -> Path:
    path = tmp_path / "samples.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_conditions_and_covariates_are_read(tmp_path: Path) -> None:
    samples = read_sample_conditions(_sheet(tmp_path))
    assert samples.conditions == {
        "face1": "faces", "face2": "faces", "place1": "places", "place2": "places",
        "body1": "bodies", "noise": None,
    }  # fmt: skip
    assert samples.labels == ["bodies", "faces", "places"]
    assert list(samples.covariates.columns) == ["luminance", "duration_s"]
    assert samples.covariates.loc["face2", "luminance"] == 0.7
    assert pd.isna(samples.covariates.loc["place2", "luminance"])
    # Only the stimuli the workflow runs (rows it skipped are not read).
    kept = read_sample_conditions(_sheet(tmp_path), stimuli={"face1", "noise"})
    assert set(kept.conditions) == {"face1", "noise"}


def test_a_sheet_without_condition_column_has_no_conditions(tmp_path: Path) -> None:
    samples = read_sample_conditions(_sheet(tmp_path, "stimulus\tpath\na\ta.wav\n"))
    assert samples.conditions == {"a": None} and samples.labels == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stimulus\tpath\tcondition\na\ta.wav\trest\n", "'rest' of stimulus 'a' is not allowed"),
        ("stimulus\tpath\tcondition\na\ta.wav\tfa ces\n", "'fa ces' of stimulus 'a'"),
        ("stimulus\tpath\tlum\na\ta.wav\tbright\n", "covariate column 'lum' holds 'bright'"),
        ("stimulus\tpath\na\ta.wav\na\tb.wav\n", "stimuli listed twice: ['a']"),
        ("name\tpath\na\ta.wav\n", "no 'stimulus' column"),
    ],
)
def test_bad_sheets_name_the_file_and_cell(tmp_path: Path, text: str, message: str) -> None:
    path = _sheet(tmp_path, text)
    with pytest.raises(TribeInputError) as info:
        read_sample_conditions(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_sample_sheet_schema_accepts_numeric_covariates_and_refuses_text(tmp_path: Path) -> None:
    text = {c: str for c in ("stimulus", "path", "language", "condition")}
    good = pd.read_csv(_sheet(tmp_path), sep="\t", dtype=text)
    validate(good, SCHEMA)
    bad = pd.read_csv(
        _sheet(tmp_path, "stimulus\tpath\tcondition\tlum\na\ta.wav\tx\tbright\n"),
        sep="\t",
        dtype=text,
    )
    with pytest.raises(WorkflowError, match="row 0"):
        validate(bad, SCHEMA)
    for row in ("a\ta.wav\trest\t1\n", "../a\ta.wav\tx\t1\n"):
        sheet = _sheet(tmp_path, "stimulus\tpath\tcondition\tlum\n" + row)
        with pytest.raises(WorkflowError):
            validate(pd.read_csv(sheet, sep="\t", dtype=text), SCHEMA)


def test_contrasts_accept_lists_rest_and_zero(tmp_path: Path) -> None:
    samples = read_sample_conditions(_sheet(tmp_path))
    contrasts = parse_contrasts(
        {
            "faces_vs_places": {"plus": ["faces"], "minus": ["places"]},
            "faces_vs_rest": {"plus": "faces", "minus": "rest"},
            "objects_vs_places": {"plus": ["faces", "bodies"], "minus": "places"},
            "faces": {"plus": ["faces"]},
            "adjusted": {"plus": "faces", "minus": "places", "covariates": ["duration_s"]},
            "faces_vs_bodies": {"plus": "faces", "minus": "bodies"},
        },
        samples.labels,
        samples.covariates.columns,
    )
    assert contrasts["faces_vs_rest"].minus == ("bodies", "places")
    assert contrasts["faces_vs_rest"].describe() == "faces - rest"
    assert contrasts["objects_vs_places"].plus == ("faces", "bodies")
    assert contrasts["faces"].minus == () and contrasts["faces"].describe() == "faces - 0"

    groups, cov = contrast_design(contrasts["faces_vs_rest"], samples)
    assert groups == {"body1": -1, "face1": 1, "face2": 1, "place1": -1, "place2": -1}
    assert cov == {}  # the unlabelled stimulus is in no group
    groups, cov = contrast_design(contrasts["adjusted"], samples)
    assert groups == {"face1": 1, "face2": 1, "place1": -1, "place2": -1}
    assert cov == {"duration_s": {"face1": 4.0, "face2": 4.0, "place1": 4.0, "place2": 4.0}}
    with pytest.raises(TribeConfigError, match=r"2 in plus \['faces'\] and 1 in minus"):
        contrast_design(contrasts["faces_vs_bodies"], samples)  # one body: no variance
    groups, _ = contrast_design(contrasts["faces"], samples)
    assert groups == {"face1": 1, "face2": 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"x": {"plus": ["cars"]}}, "names conditions ['cars'] that no stimulus has"),
        ({"x": {"plus": "faces", "minus": ["faces"]}}, "has ['faces'] on both sides"),
        ({"x": {"minus": "faces"}}, "needs at least one 'plus'"),
        ({"x": {"plus": "faces", "covariates": ["age"]}}, "covariates ['age'] that are not"),
        ({"x": {"plus": "faces", "weights": [1]}}, "unknown keys ['weights']"),
        ({"a/b": {"plus": "faces"}}, "must be a plain name"),
        ({"x": {"plus": [1]}}, "must be a condition or a list"),
        ({"x": {"plus": ["faces", "places", "bodies"], "minus": "rest"}}, "every condition"),
    ],
)
def test_bad_contrasts_are_config_errors(tmp_path: Path, spec: dict, message: str) -> None:
    samples = read_sample_conditions(_sheet(tmp_path))
    with pytest.raises(TribeConfigError) as info:
        parse_contrasts(spec, samples.labels, samples.covariates.columns)
    assert message in str(info.value)


def test_a_covariate_missing_for_a_contrast_stimulus_is_an_error(tmp_path: Path) -> None:
    samples = read_sample_conditions(_sheet(tmp_path))
    contrast = parse_contrasts(
        {"lum": {"plus": "faces", "minus": "places", "covariates": ["luminance"]}},
        samples.labels,
        samples.covariates.columns,
    )["lum"]
    with pytest.raises(TribeConfigError, match=r"empty for stimuli \['place2'\]"):
        contrast_design(contrast, samples)


def test_worked_example_config_is_valid_and_its_contrasts_parse(tmp_path: Path) -> None:
    """config/localizer.yaml over config/config.yaml passes the schema; its contrasts fit the
    sample sheet its comments show."""
    import yaml

    overlay = yaml.safe_load((REPO / "config" / "localizer.yaml").read_text())
    config = {**yaml.safe_load((REPO / "config" / "config.yaml").read_text()), **overlay}
    validate(config, str(REPO / "config" / "schema" / "config.schema.yaml"))
    assert config["insilico"]["n_permutations"] == 5000 and config["fmriprep"]["dir"] is None
    lines = [
        line.removeprefix("#").split()
        for line in (REPO / "config" / "localizer.yaml").read_text().splitlines()
        if line.startswith("#   ") and len(line.split()) == 6
    ]
    sheet = _sheet(tmp_path, "\n".join("\t".join(cells) for cells in lines) + "\n")
    samples = read_sample_conditions(sheet)
    assert samples.labels == sorted(
        ["faces", "places", "bodies", "speech", "music", "sentences", "wordlists"]
    )
    contrasts = parse_contrasts(config["contrasts"], samples.labels, samples.covariates.columns)
    assert contrasts["faces_vs_rest"].minus == (
        "bodies", "music", "places", "sentences", "speech", "wordlists",
    )  # fmt: skip
    assert contrasts["sentences_vs_wordlists"].covariates == ("duration_s",)

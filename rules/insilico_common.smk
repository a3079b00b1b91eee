# In-silico stages' set-up (included by rules/insilico.smk): the sample sheet's conditions
# (validated against config/schema/samples.schema.yaml), the contrasts, the lab's fMRIPrep
# runs, and the input functions and targets of the in-silico rules.
import pandas as pd

from tribe_core.errors import TribeConfigError  # noqa: E402
from tribe_core.insilico.conditions import (  # noqa: E402
    contrast_design,
    parse_contrasts,
    read_sample_conditions,
)
from tribe_core.insilico.fmriprep import find_bold_runs, stimulus_occurrences  # noqa: E402

INSILICO = config["insilico"]
FMRIPREP = config["fmriprep"]
INSILICO_DIR = f"{RESULTS}/insilico"  # group products: beside the stimuli' folders
if (config["contrasts"] or config["fmriprep"]["dir"]) and "insilico" in STIMULI:
    raise TribeConfigError(
        f"a stimulus named 'insilico' ({STIMULI['insilico'].path}) would share "
        f"{INSILICO_DIR}/ with the in-silico group products; rename the file"
    )
_source = config["stimuli"]
_source = Path(_source["source"] if isinstance(_source, dict) else _source)
SAMPLE_SHEET = _source if _source.is_file() else None
SAMPLES = None
if SAMPLE_SHEET is not None:
    # Names and labels stay text (a stimulus called 001 is not the number 1); every
    # other column is a covariate and must be numeric. Rows the stimulus scan skipped
    # (`stimuli.on_error: skip`) are not checked again.
    _text = {c: str for c in ("stimulus", "path", "language", "condition")}
    _sheet = pd.read_csv(SAMPLE_SHEET, sep="\t", dtype=_text)
    validate(
        _sheet[_sheet["stimulus"].str.strip().isin(set(STIMULI))].copy(),
        workflow.source_path("../config/schema/samples.schema.yaml"),
    )
    SAMPLES = read_sample_conditions(SAMPLE_SHEET, stimuli=STIMULI)

_window = INSILICO["window_trs"]
if _window and not 0 <= _window[0] < _window[1]:
    raise TribeConfigError(
        f"insilico.window_trs must be [start, stop) with start < stop, got {_window}"
    )

CONTRASTS = {}
if config["contrasts"]:
    if SAMPLES is None:
        raise TribeConfigError(
            "`contrasts` needs a TSV sample sheet with a `condition` column as `stimuli` "
            f"(got the folder {config['stimuli']!r}); see config/README.md"
        )
    CONTRASTS = parse_contrasts(config["contrasts"], SAMPLES.labels, SAMPLES.covariates.columns)
    if INSILICO["rdm_rois"] and ATLAS_DIR is None:
        raise TribeConfigError("insilico.rdm_rois needs the HCP-MMP1 atlas (products.atlas_dir)")
# Contrast -> (stimulus -> +1/-1, covariate -> {stimulus: value}), only its own stimuli.
DESIGNS = {name: contrast_design(c, SAMPLES) for name, c in CONTRASTS.items()}

OCCURRENCES = {}
if FMRIPREP["dir"]:
    _runs = find_bold_runs(
        FMRIPREP["dir"],
        space=FMRIPREP["space"],
        subjects=FMRIPREP["subjects"],
        bids_dir=FMRIPREP["bids_dir"],
    )
    OCCURRENCES = stimulus_occurrences(
        _runs, STIMULI, run_map=FMRIPREP["runs"], events_column=FMRIPREP["events_column"]
    )
    if not OCCURRENCES:
        raise TribeConfigError(
            f"fmriprep.dir {FMRIPREP['dir']!r}: {len(_runs)} {FMRIPREP['space']} runs, "
            f"{sum(r.events is not None for r in _runs)} with an events file, but none shows a "
            f"stimulus of this workflow (events column {FMRIPREP['events_column']!r}, "
            f"runs {dict(FMRIPREP['runs'])}); see config/README.md"
        )


wildcard_constraints:
    contrast="|".join(re.escape(c) for c in CONTRASTS) or "(?!x)x",


def stimulus_response(name):
    return f"{RESULTS}/{name}/insilico/response.npz"


def contrast_stimuli(wildcards):
    return list(DESIGNS[wildcards.contrast][0])


def contrast_responses(wildcards):
    return [stimulus_response(s) for s in contrast_stimuli(wildcards)]


def fmriprep_inputs(wildcards):
    """The BOLD pairs, sidecars and events files a stimulus' evaluation reads."""
    files = [f for occ in OCCURRENCES[wildcards.stimulus] for f in occ.run.files()]
    return sorted({str(f) for f in files})


def insilico_targets():
    """Contrast folders and group tables (with `contrasts`), evaluations (with `fmriprep.dir`)."""
    targets = []
    if CONTRASTS:
        targets += [f"{INSILICO_DIR}/contrasts/{name}" for name in CONTRASTS]
        targets += [f"{INSILICO_DIR}/group/rdm.tsv", f"{INSILICO_DIR}/group/rdm.png"]
        if ATLAS_DIR is not None:
            targets.append(f"{INSILICO_DIR}/group/stimulus_roi.tsv")
    targets += [f"{RESULTS}/{name}/insilico/fmriprep" for name in OCCURRENCES]
    return targets

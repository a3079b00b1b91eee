# Config validation, the stimulus table, wildcard constraints and input functions.
import re
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)

from tribe_core.events.sidecar import find_sidecar  # noqa: E402
from tribe_core.features.spec import modality_dtype  # noqa: E402
from tribe_core.features.store import feature_model_fingerprints  # noqa: E402
from tribe_core.products.atlas_source import (  # noqa: E402
    AtlasSettings,
    atlas_missing_message,
    resolve_atlas_dir,
)
from tribe_core.config_check import check_checkpoint, check_config_keys  # noqa: E402
from tribe_core.stimuli import stimuli_from_config  # noqa: E402

check_config_keys(config, workflow.source_path("../config/schema/config.schema.yaml"))
validate(config, workflow.source_path("../config/schema/config.schema.yaml"))
check_checkpoint(config["checkpoint"])

STIMULI = stimuli_from_config(config["stimuli"], default_language=config["language"])
RESULTS = config["results_dir"]
MODALITIES = ["text", "audio", "video"]


def _names_regex(kinds):
    names = [re.escape(n) for n, s in STIMULI.items() if s.kind in kinds]
    # A pattern that matches nothing keeps a rule inert when no stimulus needs it.
    return "|".join(names) if names else "(?!x)x"


# HCP-MMP1 from the config, a cache or an allowed download; None leaves the ROI products out.
ATLAS_SETTINGS = AtlasSettings.from_products(config["products"])
ATLAS_DIR = resolve_atlas_dir(ATLAS_SETTINGS)
if ATLAS_DIR is None:
    print(f"WARNING: {atlas_missing_message(ATLAS_SETTINGS)}", file=sys.stderr)


MEDIA_STIMULI = _names_regex({"video", "audio"})
TEXT_STIMULI = _names_regex({"text"})
VIDEO_STIMULI = _names_regex({"video"})


ANY_STIMULUS = "[^/]+"


wildcard_constraints:
    stimulus=ANY_STIMULUS,


def res(name):
    """Resources of a stage from config['resources'][name], with defaults."""
    defaults = {"mem_mb": 4000, "runtime": 60, "gpu": 0}
    return {**defaults, **config["resources"].get(name, {})}


def stimulus_path(wildcards):
    return str(STIMULI[wildcards.stimulus].path)


def stimulus_language(wildcards):
    return STIMULI[wildcards.stimulus].language or config["language"]


def sidecar_input(wildcards):
    if not config["transcription"]["use_sidecar"]:
        return []
    sidecar = find_sidecar(STIMULI[wildcards.stimulus].path)
    return [str(sidecar)] if sidecar else []


def checkpoint_config_input(wildcards):
    """A local checkpoint's config.yaml, so editing it reruns features and predictions."""
    config_yaml = Path(config["checkpoint"]) / "config.yaml"
    return [str(config_yaml)] if config_yaml.is_file() else []


def feature_inputs(wildcards):
    """Feature stores of a stimulus: video only for video stimuli."""
    kinds = ["text", "audio"]
    if STIMULI[wildcards.stimulus].kind == "video":
        kinds.append("video")
    return {m: f"{RESULTS}/{wildcards.stimulus}/features/{m}.zarr" for m in kinds}


def all_targets():
    targets = []
    for name in STIMULI:
        base = f"{RESULTS}/{name}"
        targets += [
            f"{base}/predictions.zarr",
            f"{base}/nifti/predictions.nii.gz",
            f"{base}/plots",
            f"{base}/report.html",
        ]
        if ATLAS_DIR is not None:
            targets.append(f"{base}/rois/roi_mean.tsv")
        if config["products"]["contributions"]:
            targets.append(f"{base}/contributions")
        if name in config["products"]["real_fmri"]:
            targets.append(f"{base}/evaluation")
    return targets + insilico_targets()  # rules/insilico_common.smk

# tribeflow: naturalistic stimuli -> TRIBE v2 predicted fMRI responses and products.
# This file only wires: logic lives in tribe_core, stage rules in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/media.smk"
include: "rules/events.smk"
include: "rules/features.smk"
include: "rules/encoder.smk"
include: "rules/products.smk"
include: "rules/insilico.smk"


rule all:
    default_target: True
    input:
        all_targets(),


# After a run that executed jobs (not a dry run): each stimulus' products and their paths.
onsuccess:
    from tribe_core.summary import print_run_summary

    print_run_summary(RESULTS, STIMULI)

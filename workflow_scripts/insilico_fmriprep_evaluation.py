"""Snakemake adapter: rule insilico_fmriprep_evaluation -> run_fmriprep_evaluation."""

from tribe_core.insilico.stages import run_fmriprep_evaluation
from tribe_core.logs import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
run_fmriprep_evaluation(
    snakemake.input.predictions,
    snakemake.output[0],
    occurrences=list(p.occurrences),
    atlas_dir=p.atlas_dir,
    hemodynamic_offset_s=p.hemodynamic_offset_s,
    detrend=p.detrend,
    seed=p.seed,
    stimulus=snakemake.wildcards.stimulus,
)

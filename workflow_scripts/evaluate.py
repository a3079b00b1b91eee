"""Snakemake adapter: rule evaluate -> tribe_core.stages.run_evaluate."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_evaluate

setup_logging(snakemake.log[0])
run_evaluate(
    snakemake.input.predictions,
    snakemake.input.real_fmri,
    snakemake.output[0],
    top_k=list(snakemake.params.top_k),
)

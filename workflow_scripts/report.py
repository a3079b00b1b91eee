"""Snakemake adapter: rule report -> tribe_core.stages.run_report."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_report

setup_logging(snakemake.log[0])
run_report(
    snakemake.wildcards.stimulus,
    snakemake.input.predictions,
    snakemake.input.events,
    snakemake.input.plots,
    snakemake.output.html,
    snakemake.params.stimulus_path,
)

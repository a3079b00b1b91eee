"""Snakemake adapter: rule insilico_response -> tribe_core.insilico.stages.run_stimulus_response."""

from tribe_core.insilico.stages import run_stimulus_response
from tribe_core.logs import setup_logging

setup_logging(snakemake.log[0])
run_stimulus_response(
    snakemake.input.predictions,
    snakemake.output[0],
    window_trs=snakemake.params.window_trs,
    stimulus=snakemake.wildcards.stimulus,
)

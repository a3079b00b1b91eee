"""Snakemake adapter: rule synthesize_speech -> tribe_core.stages.run_synthesize_speech."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_synthesize_speech

setup_logging(snakemake.log[0])
run_synthesize_speech(
    snakemake.input[0],
    snakemake.output.wav,
    snakemake.output.media,
    snakemake.output.transcript,
    language=snakemake.params.language,
    engine=snakemake.params.engine,
)

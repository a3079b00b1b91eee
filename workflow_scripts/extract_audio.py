"""Snakemake adapter: rule extract_audio -> tribe_core.stages.run_extract_audio."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_extract_audio

setup_logging(snakemake.log[0])
run_extract_audio(snakemake.input[0], snakemake.output.wav, snakemake.output.media)

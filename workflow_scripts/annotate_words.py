"""Snakemake adapter: rule annotate_words -> tribe_core.stages.run_annotate_words."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_annotate_words

setup_logging(snakemake.log[0])
run_annotate_words(snakemake.input.transcript, snakemake.input.media, snakemake.output.events)

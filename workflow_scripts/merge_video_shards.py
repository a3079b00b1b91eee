"""Snakemake adapter: rule merge_video_shards -> tribe_core.stages.run_merge_video_shards."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_merge_video_shards

setup_logging(snakemake.log[0])
run_merge_video_shards(
    list(snakemake.input.shards),
    snakemake.output.store,
    store_dtype=snakemake.params.store_dtype,
    stimulus=snakemake.wildcards.stimulus,
)

"""Snakemake adapter: rule extract_video_shard -> tribe_core.stages.run_extract_video_shard."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_extract_video_shard
from tribe_core.threads import limit_threads

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
p = snakemake.params
run_extract_video_shard(
    snakemake.input.video,
    snakemake.input.media,
    snakemake.output.store,
    shard=int(snakemake.wildcards.shard),
    n_shards=p.n_shards,
    checkpoint=p.checkpoint,
    model_override=p.model_override,
    device=p.device,
    jobs_per_gpu=snakemake.config["gpu_jobs_per_device"],
    dtype=p.dtype,
    batch_size=p.batch_size,
    fused=p.fused,
    stimulus=snakemake.wildcards.stimulus,
)

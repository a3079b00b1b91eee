"""Snakemake adapter: rule contributions -> tribe_core.stages.run_contributions."""

from tribe_core.devices import bind_device
from tribe_core.logs import setup_logging
from tribe_core.stages import run_contributions
from tribe_core.threads import limit_threads

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
p = snakemake.params
run_contributions(
    {m: snakemake.input[m] for m in ("text", "audio", "video") if m in snakemake.input.keys()},
    snakemake.input.events,
    snakemake.input.media,
    snakemake.output[0],
    checkpoint=p.checkpoint,
    device=bind_device(p.device, snakemake.config["gpu_jobs_per_device"]),
    precision=p.precision,
    batch_size=p.batch_size,
    duration_trs=p.duration_trs,
    overlap_trs=p.overlap_trs,
    stimulus=snakemake.wildcards.stimulus,
)

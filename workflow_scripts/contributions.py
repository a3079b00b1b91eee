"""Snakemake adapter: rule contributions -> tribe_core.stages.run_contributions."""

from dataclasses import replace

from tribe_core.devices import bind_device
from tribe_core.logs import setup_logging
from tribe_core.stages import PredictSettings, run_contributions
from tribe_core.threads import limit_threads

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
settings = PredictSettings(**dict(snakemake.params.items()))
run_contributions(
    {m: snakemake.input[m] for m in ("text", "audio", "video") if m in snakemake.input.keys()},
    snakemake.input.events,
    snakemake.input.media,
    snakemake.output[0],
    replace(settings, device=bind_device(settings.device, snakemake.config["gpu_jobs_per_device"])),
    stimulus=snakemake.wildcards.stimulus,
)

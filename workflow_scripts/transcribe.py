"""Snakemake adapter: rule transcribe -> tribe_core.stages.run_transcribe."""

from tribe_core.devices import bind_device
from tribe_core.logs import setup_logging
from tribe_core.stages import run_transcribe
from tribe_core.threads import limit_threads

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
p = snakemake.params
run_transcribe(
    snakemake.input.wav,
    snakemake.input.media,
    snakemake.output.transcript,
    sidecar=snakemake.input.sidecar[0] if snakemake.input.sidecar else None,
    model=p.model,
    language=p.language,
    device=bind_device(p.device, snakemake.config["gpu_jobs_per_device"]),
    compute_type=p.compute_type,
    batch_size=p.batch_size,
    align_model=p.align_model,
)

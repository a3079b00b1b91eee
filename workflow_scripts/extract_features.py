"""Snakemake adapter: rules extract_{text,audio,video}_features -> run_extract_features."""

from tribe_core.devices import bind_device
from tribe_core.logs import setup_logging
from tribe_core.stages import run_extract_features
from tribe_core.threads import limit_threads

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
p = snakemake.params
run_extract_features(
    p.modality,
    snakemake.input[0],
    snakemake.input.media,
    snakemake.output.store,
    checkpoint=p.checkpoint,
    model_override=p.model_override,
    device=bind_device(p.device, snakemake.config["gpu_jobs_per_device"]),
    dtype=p.dtype,
    batch_size=p.batch_size,
    store_dtype=p.store_dtype,
    context_stride=p.get("context_stride", 1),  # text only (MODALITY_PARAMS); 1 = no stride
    fused=p.get("fused", "auto"),  # text and video only (MODALITY_PARAMS)
    stimulus=snakemake.wildcards.stimulus,
)

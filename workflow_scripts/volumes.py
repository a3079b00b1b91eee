"""Snakemake adapter: rule volumes -> tribe_core.stages.run_volumes."""

from pathlib import Path

from tribe_core.logs import setup_logging
from tribe_core.stages import run_volumes

setup_logging(snakemake.log[0])
run_volumes(
    snakemake.input.predictions,
    snakemake.output.nifti,
    Path(snakemake.output.gifti_lh).parent,
    smoothing_fwhm_mm=snakemake.params.smoothing_fwhm_mm,
    threads=snakemake.threads,
)

"""Snakemake adapter: rule insilico_roi_matrix -> tribe_core.insilico.stages.run_roi_matrix."""

from tribe_core.insilico.stages import run_roi_matrix
from tribe_core.logs import setup_logging

setup_logging(snakemake.log[0])
run_roi_matrix(
    list(snakemake.input.responses),
    list(snakemake.params.stimuli),
    snakemake.output[0],
    atlas_dir=snakemake.params.atlas_dir,
)

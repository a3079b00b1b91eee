"""Snakemake adapter: rule roi_table -> tribe_core.stages.run_roi_table."""

from pathlib import Path

from tribe_core.logs import setup_logging
from tribe_core.stages import run_roi_table

setup_logging(snakemake.log[0])
p = snakemake.params
run_roi_table(
    snakemake.input.predictions,
    Path(snakemake.output.mean).parent,
    atlas_dir=p.atlas_dir,
    rois=p.rois,
    top_k=p.top_k,
)

"""Snakemake adapter: rule insilico_rdm -> tribe_core.insilico.stages.run_rdm."""

from tribe_core.insilico.stages import run_rdm
from tribe_core.logs import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
run_rdm(
    list(snakemake.input.responses),
    list(p.stimuli),
    snakemake.output.tsv,
    snakemake.output.png,
    atlas_dir=p.atlas_dir,
    rois=list(p.rois),
    space=p.space,
)

"""Snakemake adapter: rule insilico_contrast -> tribe_core.insilico.stages.run_contrast."""

from tribe_core.insilico.stages import run_contrast
from tribe_core.logs import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
run_contrast(
    list(snakemake.input.responses),
    list(p.stimuli),
    snakemake.output[0],
    contrast=snakemake.wildcards.contrast,
    description=p.description,
    groups=dict(p.groups),
    covariates=dict(p.covariates),
    atlas_dir=p.atlas_dir,
    n_permutations=p.n_permutations,
    correction=p.correction,
    alpha=p.alpha,
    seed=p.seed,
    statistic=p.statistic,
    tail=p.tail,
    top_k=p.top_k,
    window_trs=p.window_trs,
    threads=snakemake.threads,
)

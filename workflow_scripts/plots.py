"""Snakemake adapter: rule plots -> tribe_core.stages.run_plots."""

from tribe_core.logs import setup_logging
from tribe_core.stages import run_plots

setup_logging(snakemake.log[0])
p = snakemake.params
run_plots(
    snakemake.input.predictions,
    snakemake.output.plots,
    trs=list(p.trs),
    views=list(p.views),
    cmap=p.cmap,
    movie=p.movie,
    threads=snakemake.threads,
)

"""In-silico experiments across a stimulus set: conditions, contrasts, group tables, evaluation.

Data flow (each step a workflow stage, cached like the others):

- :mod:`~tribe_core.insilico.responses`: one response map ``[20484]`` per stimulus, the
  mean of its predictions over all kept TRs or a TR window after onset.
- :mod:`~tribe_core.insilico.conditions`: the sample sheet's ``condition`` and covariate
  columns; contrasts (``plus`` / ``minus`` conditions, one-vs-rest, against zero).
- :mod:`~tribe_core.insilico.stats`: t statistics (Welch, pooled, GLM with covariates) and
  seeded permutation / sign-flip tests with max-statistic FWE and BH-FDR, vectorised.
- :mod:`~tribe_core.insilico.contrasts`: per-contrast maps, ROI tables, GIFTI/NIfTI, plots.
- :mod:`~tribe_core.insilico.group`: stimulus x ROI matrix, representational
  dissimilarity matrix.
- :mod:`~tribe_core.insilico.fmriprep` and :mod:`~tribe_core.insilico.evaluation`: a lab's
  fMRIPrep surface BOLD (fsaverage5/6/7) against the predictions, with a split-half
  noise ceiling.
- :mod:`~tribe_core.insilico.stages`: one function per workflow rule.
"""

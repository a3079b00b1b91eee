"""Permutation tests across stimuli: t statistics, exactness, seeding, null calibration."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from scipy import stats

from tribe_core.errors import TribeInputError
from tribe_core.insilico.stats import _FreedmanLane, _TwoSample, fdr_bh, permutation_test


def _groups(n_plus: int, n_minus: int) -> np.ndarray:
    return np.array([1] * n_plus + [-1] * n_minus)


@pytest.mark.parametrize("statistic", ["welch", "pooled"])
def test_two_sample_t_and_effect_match_scipy(statistic: str) -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((17, 300)) * rng.uniform(0.5, 3, 300) + 4.0
    y[:7] *= 1.7  # unequal variances: Welch and pooled differ
    group = _groups(7, 10)
    result = permutation_test(y, group, statistic=statistic, n_permutations=50)
    expected = stats.ttest_ind(y[:7], y[7:], equal_var=statistic == "pooled").statistic
    np.testing.assert_allclose(result.t, expected, rtol=1e-10)
    np.testing.assert_allclose(result.effect, y[:7].mean(0) - y[7:].mean(0), rtol=1e-12)
    assert result.statistic == statistic and result.n_permutations == 50


def test_one_sample_and_glm_t_match_references() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((12, 200)) + 0.3
    one = permutation_test(y, np.ones(12, int), n_permutations=20)
    np.testing.assert_allclose(one.t, stats.ttest_1samp(y, 0).statistic, rtol=1e-10)
    assert one.statistic == "one-sample" and one.df == 11

    group, cov = _groups(6, 6), rng.standard_normal((12, 2))
    glm = permutation_test(y, group, covariates=cov, n_permutations=20)
    x = np.column_stack([(group > 0).astype(float), np.ones(12), cov])
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    rss = ((y - x @ beta) ** 2).sum(0)
    t = beta[0] / np.sqrt(rss / (12 - 4) * np.linalg.inv(x.T @ x)[0, 0])
    np.testing.assert_allclose(glm.t, t, rtol=1e-9)
    np.testing.assert_allclose(glm.effect, beta[0], rtol=1e-9)
    assert glm.statistic == "glm" and glm.df == 8


def test_freedman_lane_without_covariates_is_the_pooled_label_permutation() -> None:
    """Permuting residuals by pi is relabelling by pi's inverse: the same null t values."""
    rng = np.random.default_rng(2)
    y = rng.standard_normal((10, 50))
    plus = _groups(4, 6) > 0
    perms = rng.permuted(np.tile(np.arange(10), (30, 1)), axis=1)
    fl = _FreedmanLane(y, np.column_stack([plus.astype(float), np.ones(10)]), "permute")
    pooled = _TwoSample(y, plus, welch=False)
    np.testing.assert_allclose(fl.t(perms), pooled.t(np.argsort(perms, axis=1)), atol=1e-12)


def test_exhaustive_relabellings_give_exact_p_values() -> None:
    # 4 vs 4 stimuli: 70 relabellings; perfectly separated groups reach p = 1/70 one-sided.
    y = np.array([[5.0], [6.0], [7.0], [8.0], [0.0], [1.0], [2.0], [3.0]])
    result = permutation_test(y, _groups(4, 4), tail="greater", n_permutations=1000)
    assert result.exhaustive and result.n_permutations == 70
    assert result.p_uncorrected[0] == pytest.approx(1 / 70)
    two = permutation_test(y, _groups(4, 4), n_permutations=1000)
    assert two.p_uncorrected[0] == pytest.approx(2 / 70)  # the mirror labelling ties |t|
    flips = permutation_test(np.abs(y) + 1, np.ones(8, int), tail="greater", n_permutations=500)
    assert flips.exhaustive and flips.n_permutations == 256
    assert flips.p_uncorrected[0] == pytest.approx(1 / 256)


def test_same_seed_same_p_values_other_seed_differs() -> None:
    rng = np.random.default_rng(3)
    y = rng.standard_normal((20, 100))
    group = _groups(10, 10)
    a = permutation_test(y, group, n_permutations=200, seed=7)
    b = permutation_test(y, group, n_permutations=200, seed=7)
    c = permutation_test(y, group, n_permutations=200, seed=8)
    np.testing.assert_array_equal(a.p_uncorrected, b.p_uncorrected)
    np.testing.assert_array_equal(a.null_max, b.null_max)
    assert not np.array_equal(a.p_uncorrected, c.p_uncorrected)
    assert a.p_uncorrected.min() >= 1 / 201 and not a.exhaustive


@pytest.mark.parametrize(
    ("group", "covariates"),
    [
        (_groups(10, 12), None),  # label permutation, Welch
        (np.ones(16, int), None),  # sign flips
        (_groups(9, 9), "cov"),  # Freedman-Lane
    ],
    ids=["welch", "sign-flip", "freedman-lane"],
)
def test_null_p_values_are_uniform(group: np.ndarray, covariates: str | None) -> None:
    """Independent null vertices: uncorrected permutation p-values are uniform (KS)."""
    rng = np.random.default_rng(4)
    n = len(group)
    y = rng.standard_normal((n, 3000))
    cov = rng.standard_normal((n, 2)) if covariates else None
    if cov is not None:
        y += cov @ rng.standard_normal((2, 3000))  # covariates explain part of the data
    result = permutation_test(y, group, covariates=cov, n_permutations=999, seed=1)
    ks = stats.kstest(result.p_uncorrected, "uniform")
    assert ks.pvalue > 0.01, ks
    # At alpha = 0.05 about 5 % of null vertices are (uncorrected) positives.
    assert 0.035 < (result.p_uncorrected < 0.05).mean() < 0.065
    assert (result.p_fwe >= result.p_uncorrected - 1e-12).all()


def test_fwe_controls_the_family_wise_false_positive_rate() -> None:
    """Across 300 null data sets, any vertex with p_FWE < 0.05 happens about 5 % of the time."""
    hits_fwe, hits_fdr, hits_raw = 0, 0, 0
    n_sets = 300
    for seed in range(n_sets):
        rng = np.random.default_rng(100 + seed)
        y = rng.standard_normal((14, 200))
        result = permutation_test(y, _groups(7, 7), n_permutations=199, seed=seed)
        hits_fwe += bool((result.p_fwe < 0.05).any())
        hits_fdr += bool((result.p_fdr < 0.05).any())
        hits_raw += bool((result.p_uncorrected < 0.05).any())
    # Binomial(300, 0.05): sd 0.0126; 0.05 + 3 sd = 0.088.
    assert 0.015 <= hits_fwe / n_sets <= 0.088
    assert hits_fdr / n_sets <= 0.088  # under the complete null, FDR is FWE control too
    assert hits_raw / n_sets > 0.9  # without correction nearly every set has a "finding"


def test_fdr_matches_scipy_benjamini_hochberg() -> None:
    p = np.random.default_rng(5).uniform(0, 0.2, 500)
    np.testing.assert_allclose(fdr_bh(p), stats.false_discovery_control(p), rtol=1e-12)
    assert np.isnan(fdr_bh(np.array([np.nan, 0.01])))[0]


def test_thousand_permutations_over_the_cortex_take_seconds() -> None:
    rng = np.random.default_rng(6)
    y = rng.standard_normal((50, 20484)).astype(np.float32)
    start = time.perf_counter()
    result = permutation_test(y, _groups(25, 25), n_permutations=1000, seed=0)
    elapsed = time.perf_counter() - start
    assert result.n_permutations == 1000 and result.null_max.shape == (1000,)
    assert elapsed < 30, elapsed  # about 2-3 s on one idle core


@pytest.mark.parametrize(
    ("group", "covariates", "message"),
    [
        (_groups(1, 5), None, "at least 2 stimuli per group"),
        (np.ones(1, int), None, "at least 2 stimuli"),
        (_groups(3, 3), np.ones((6, 1)), "rank-deficient"),
        (np.array([1, 0, -1, 1, -1, 1]), None, "+1 (plus) or -1 (minus)"),
    ],
)
def test_bad_designs_are_refused(
    group: np.ndarray, covariates: np.ndarray | None, message: str
) -> None:
    y = np.random.default_rng(7).standard_normal((len(group), 5))
    with pytest.raises(TribeInputError, match=re.escape(message)):
        permutation_test(y, group, covariates=covariates, n_permutations=10)


def test_bad_options_are_refused() -> None:
    y = np.zeros((4, 3))
    with pytest.raises(TribeInputError, match="statistic must be one of"):
        permutation_test(y, _groups(2, 2), statistic="student")
    with pytest.raises(TribeInputError, match="tail must be one of"):
        permutation_test(y, _groups(2, 2), tail="up")
    y[0, 0] = np.nan
    with pytest.raises(TribeInputError, match="NaN"):
        permutation_test(y, _groups(2, 2))

"""t statistics across stimuli and their permutation tests, vectorised over vertices.

Every test takes ``y [n_stimuli, n_features]`` (features: vertices or ROIs) and a
group code per stimulus (``+1`` plus, ``-1`` minus; all ``+1`` for a one-sample test
against zero), and returns the observed t, the effect and permutation p-values:

- **two-sample, no covariates**: Welch's t (default) or the pooled-variance t; the
  null distribution permutes the condition labels among the contrast's stimuli.
- **one-sample** (a condition against zero): one-sample t; the null flips the sign of
  each stimulus's response (symmetric errors assumed).
- **with covariates**: the GLM t of the condition regressor with the covariates as
  nuisance (pooled variance), Freedman–Lane: residuals of the nuisance-only model are
  permuted (two-sample) or sign-flipped (one-sample) and the full model refitted.

Permutations run in blocks ``[n_block, n_features]`` of matrix products, so 1,000
permutations over 20,484 vertices and 50 stimuli take 2-3 s on one core. The random
permutations (``numpy.random.default_rng(seed)``) are drawn with replacement; when the
distinct relabellings are no more than asked for, all of them are enumerated instead
(an exact test). p-values count the observed statistic itself:
``p = (1 + #{null >= observed}) / (1 + n_permutations)`` (random), or
``#{null >= observed} / n_relabellings`` (exhaustive, the identity included).
Family-wise error uses the maximum statistic over features per permutation (Nichols
& Holmes 2002); FDR is Benjamini–Hochberg on the uncorrected permutation p-values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tribe_core.errors import TribeInputError

STATISTICS = ("welch", "pooled")
TAILS = ("two-sided", "greater", "less")
CORRECTIONS = ("fwe", "fdr")
#: Elements (float64) of the largest intermediate array of a block of permutations.
_BLOCK_ELEMENTS = 4_000_000
#: Null statistics within this relative distance of the observed one count as ties
#: (the same relabelling computed in another row of a matrix product may round apart).
_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`permutation_test` over ``n_features`` features.

    Attributes
    ----------
    effect
        ``[n_features]`` mean(plus) - mean(minus); the mean (one-sample); the
        condition coefficient adjusted for covariates (with covariates).
    t
        ``[n_features]`` observed t (0 where the variance is 0).
    p_uncorrected, p_fwe, p_fdr
        ``[n_features]`` permutation p-values: per feature, max-statistic family-wise,
        Benjamini–Hochberg q-values.
    null_max
        ``[n_permutations]`` maximum null statistic over features per permutation.
    statistic
        ``welch``, ``pooled``, ``one-sample``, ``glm`` (covariates, two-sample) or
        ``glm-one-sample``.
    tail
        ``two-sided`` (statistic ``|t|``), ``greater`` (``t``) or ``less`` (``-t``).
    n_permutations
        Relabellings in the null distribution.
    exhaustive
        True when every distinct relabelling was enumerated.
    df
        Degrees of freedom of the parametric t (Welch: ``nan``, it varies by feature).
    """

    effect: np.ndarray
    t: np.ndarray
    p_uncorrected: np.ndarray
    p_fwe: np.ndarray
    p_fdr: np.ndarray
    null_max: np.ndarray
    statistic: str
    tail: str
    n_permutations: int
    exhaustive: bool
    df: float


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values) of ``p [n]``; NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def _safe_t(numerator: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """``numerator / sqrt(variance)``, 0 where the variance is not positive."""
    out = np.zeros(np.broadcast_shapes(numerator.shape, variance.shape))
    positive = variance > 0
    np.divide(numerator, np.sqrt(np.where(positive, variance, 1.0)), out=out, where=positive)
    return out


class _TwoSample:
    """Welch or pooled t under label permutations (transforms: permutation indices)."""

    kind = "permute"

    def __init__(self, y: np.ndarray, plus: np.ndarray, welch: bool) -> None:
        self.yc = y - y.mean(axis=0)  # centring is permutation-invariant; it tames rounding
        self.y2 = self.yc**2
        self.total, self.total_sq = self.yc.sum(axis=0), self.y2.sum(axis=0)
        self.plus = plus.astype(np.float64)
        self.n1, self.n = int(plus.sum()), plus.size
        self.n2 = self.n - self.n1
        self.welch = welch
        self.df = math.nan if welch else float(self.n - 2)

    def t(self, transforms: np.ndarray) -> np.ndarray:
        g = self.plus[transforms]  # [B, n]: 1 where the relabelled stimulus is "plus"
        s1, q1 = g @ self.yc, g @ self.y2
        s2, q2 = self.total - s1, self.total_sq - q1
        m1, m2 = s1 / self.n1, s2 / self.n2
        ss1 = np.maximum(q1 - s1 * m1, 0.0)
        ss2 = np.maximum(q2 - s2 * m2, 0.0)
        if self.welch:
            var = ss1 / (self.n1 * (self.n1 - 1)) + ss2 / (self.n2 * (self.n2 - 1))
        else:
            var = (ss1 + ss2) / (self.n - 2) * (1.0 / self.n1 + 1.0 / self.n2)
        return _safe_t(m1 - m2, var)

    def distinct(self) -> int:
        return math.comb(self.n, self.n1)

    def enumerate(self) -> Iterator[np.ndarray]:
        # Which stimuli are "plus" is all the statistic sees: one transform per subset.
        for subset in itertools.combinations(range(self.n), self.n1):
            labels = np.zeros(self.n, dtype=bool)
            labels[list(subset)] = True
            # A permutation that puts the "plus" labels on ``subset``.
            order = np.empty(self.n, dtype=np.int64)
            order[np.flatnonzero(labels)] = np.flatnonzero(self.plus > 0)
            order[np.flatnonzero(~labels)] = np.flatnonzero(self.plus == 0)
            yield order


class _OneSample:
    """One-sample t against zero under sign flips (transforms: +-1 per stimulus)."""

    kind = "flip"

    def __init__(self, y: np.ndarray) -> None:
        self.y = y
        self.n = y.shape[0]
        self.total_sq = (y**2).sum(axis=0)  # invariant under sign flips
        self.df = float(self.n - 1)

    def t(self, transforms: np.ndarray) -> np.ndarray:
        s = transforms.astype(np.float64) @ self.y
        m = s / self.n
        ss = np.maximum(self.total_sq - s * m, 0.0)
        return _safe_t(m, ss / (self.n * (self.n - 1)))

    def distinct(self) -> int:
        return 2**self.n

    def enumerate(self) -> Iterator[np.ndarray]:
        for signs in itertools.product((1, -1), repeat=self.n):
            yield np.array(signs, dtype=np.int64)


class _FreedmanLane:
    """GLM t of the first column of ``x`` with the others as nuisance (Freedman–Lane).

    ``y* = T r + H_z y`` with ``r`` the nuisance-model residuals; as ``H_z y`` lies in
    the span of the full design it adds nothing to the tested coefficient or to the
    residuals, so each relabelling needs only ``a' T r`` and ``Q' T r``.
    """

    def __init__(self, y: np.ndarray, x: np.ndarray, kind: str) -> None:
        self.kind = kind
        self.n, p = x.shape
        z = x[:, 1:]
        self.r = y - z @ (np.linalg.pinv(z) @ y) if z.shape[1] else y.copy()
        self.rr = (self.r**2).sum(axis=0)
        self.a = np.linalg.pinv(x)[0]  # row of the tested coefficient
        self.q = np.linalg.qr(x)[0]  # [n, p] orthonormal basis of the design
        self.c = float(np.linalg.inv(x.T @ x)[0, 0])
        self.df = float(self.n - p)

    def _rows(self, transforms: np.ndarray, base: np.ndarray) -> np.ndarray:
        """``T' base`` for each transform: ``[B, n, ...]``."""
        if self.kind == "flip":
            return transforms.reshape(*transforms.shape, *([1] * (base.ndim - 1))) * base
        out = np.empty((transforms.shape[0], *base.shape))
        # (T r)_i = r_{pi(i)}, so a' T r = sum_i a_i r_{pi(i)}: scatter a to pi.
        out[np.arange(transforms.shape[0])[:, None], transforms] = base
        return out

    def t(self, transforms: np.ndarray) -> np.ndarray:
        numerator = self._rows(transforms, self.a) @ self.r  # [B, V]
        q = self._rows(transforms, self.q)  # [B, n, p]
        projected = np.einsum("bnp,nv->bpv", q, self.r)
        rss = np.maximum(self.rr - (projected**2).sum(axis=1), 0.0)
        return _safe_t(numerator, rss / self.df * self.c)

    def distinct(self) -> int:
        return 2**self.n if self.kind == "flip" else math.factorial(self.n)

    def enumerate(self) -> Iterator[np.ndarray]:
        if self.kind == "flip":
            for signs in itertools.product((1, -1), repeat=self.n):
                yield np.array(signs, dtype=np.int64)
        else:
            for perm in itertools.permutations(range(self.n)):
                yield np.array(perm, dtype=np.int64)


def _tail_statistic(t: np.ndarray, tail: str) -> np.ndarray:
    if tail == "two-sided":
        return np.abs(t)
    return t if tail == "greater" else -t


def _check_inputs(
    y: np.ndarray, group: np.ndarray, covariates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise TribeInputError(f"responses must be [n_stimuli, n_features], got shape {y.shape}")
    group = np.asarray(group)
    if group.shape != (y.shape[0],) or not np.isin(group, (-1, 1)).all():
        raise TribeInputError(
            f"group must hold +1 (plus) or -1 (minus) for each of the {y.shape[0]} stimuli, "
            f"got {group.tolist()}"
        )
    if not np.isfinite(y).all():
        raise TribeInputError("responses hold NaN or infinite values")
    cov = np.zeros((y.shape[0], 0)) if covariates is None else np.asarray(covariates, float)
    if cov.ndim == 1:
        cov = cov[:, None]
    if cov.shape[0] != y.shape[0] or not np.isfinite(cov).all():
        raise TribeInputError(
            f"covariates must be finite [n_stimuli={y.shape[0]}, n_covariates], got "
            f"shape {cov.shape}"
        )
    return y, group, cov


def _engine(
    y: np.ndarray, group: np.ndarray, cov: np.ndarray, statistic: str
) -> _TwoSample | _OneSample | _FreedmanLane:
    n_plus, n_minus = int((group > 0).sum()), int((group < 0).sum())
    two_sample = n_minus > 0
    if two_sample and min(n_plus, n_minus) < 2:
        raise TribeInputError(
            f"a two-group contrast needs at least 2 stimuli per group; got {n_plus} plus "
            f"and {n_minus} minus"
        )
    if not two_sample and n_plus < 2:
        raise TribeInputError(f"a contrast against zero needs at least 2 stimuli, got {n_plus}")
    if cov.shape[1] == 0:
        if two_sample:
            return _TwoSample(y, group > 0, welch=statistic == "welch")
        return _OneSample(y)
    centred = cov - cov.mean(axis=0)
    if two_sample:
        x = np.column_stack([(group > 0).astype(float), np.ones(len(group)), centred])
        kind = "permute"
    else:
        x = np.column_stack([np.ones(len(group)), centred])
        kind = "flip"
    if np.linalg.matrix_rank(x) < x.shape[1] or x.shape[0] - x.shape[1] < 1:
        raise TribeInputError(
            f"the design of {x.shape[0]} stimuli with {cov.shape[1]} covariate(s) is "
            "rank-deficient or leaves no degree of freedom (a covariate is constant, "
            "duplicated, or explains the conditions); drop it or add stimuli"
        )
    return _FreedmanLane(y, x, kind)


def _transform_blocks(
    engine: _TwoSample | _OneSample | _FreedmanLane,
    n_permutations: int,
    rng: np.random.Generator,
    block: int,
) -> tuple[Iterator[np.ndarray], int, bool]:
    distinct = engine.distinct()
    if distinct <= n_permutations:

        def exhaustive() -> Iterator[np.ndarray]:
            batch: list[np.ndarray] = []
            for transform in engine.enumerate():
                batch.append(transform)
                if len(batch) == block:
                    yield np.stack(batch)
                    batch = []
            if batch:
                yield np.stack(batch)

        return exhaustive(), distinct, True
    n = engine.n

    def random() -> Iterator[np.ndarray]:
        for start in range(0, n_permutations, block):
            size = min(block, n_permutations - start)
            if engine.kind == "flip":
                yield rng.choice(np.array([1, -1]), size=(size, n))
            else:
                yield rng.permuted(np.tile(np.arange(n), (size, 1)), axis=1)

    return random(), n_permutations, False


def permutation_test(
    y: np.ndarray,
    group: np.ndarray,
    *,
    covariates: np.ndarray | None = None,
    statistic: str = "welch",
    tail: str = "two-sided",
    n_permutations: int = 1000,
    seed: int = 0,
) -> PermutationResult:
    """Contrast of stimulus groups with a permutation test per feature.

    Parameters
    ----------
    y
        ``[n_stimuli, n_features]`` responses (time-averaged maps or ROI means).
    group
        ``[n_stimuli]``: ``+1`` plus, ``-1`` minus; all ``+1`` tests the mean against 0.
    covariates
        ``[n_stimuli, n_covariates]`` nuisance regressors (centred here); the GLM t with
        Freedman–Lane permutations is used whenever there is at least one.
    statistic
        ``welch`` or ``pooled``: the two-sample t without covariates.
    tail
        ``two-sided``, ``greater`` (plus > minus) or ``less``.
    n_permutations
        Random relabellings (all distinct ones when there are no more than this).
    seed
        Seed of ``numpy.random.default_rng``: the same seed gives the same p-values.

    Returns
    -------
    PermutationResult
    """
    if statistic not in STATISTICS:
        raise TribeInputError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if tail not in TAILS:
        raise TribeInputError(f"tail must be one of {TAILS}, got {tail!r}")
    if n_permutations < 1:
        raise TribeInputError(f"n_permutations must be >= 1, got {n_permutations}")
    y, group, cov = _check_inputs(y, group, covariates)
    engine = _engine(y, group, cov, statistic)
    n, n_features = y.shape
    width = n_features * (cov.shape[1] + 2 if isinstance(engine, _FreedmanLane) else 2)
    block = max(1, _BLOCK_ELEMENTS // max(width, 1))
    identity = np.ones((1, n), np.int64) if engine.kind == "flip" else np.arange(n)[None]
    t_obs = engine.t(identity)[0]
    observed = _tail_statistic(t_obs, tail)
    threshold = observed - _TIE_RTOL * (1.0 + np.abs(observed))
    blocks, total, exhaustive = _transform_blocks(
        engine, n_permutations, np.random.default_rng(seed), block
    )
    counts = np.zeros(n_features, dtype=np.int64)
    null_max = []
    for transforms in blocks:
        null = _tail_statistic(engine.t(transforms), tail)
        counts += (null >= threshold).sum(axis=0)
        null_max.append(null.max(axis=1))
    maxima = np.concatenate(null_max)
    exceed_max = total - np.searchsorted(np.sort(maxima), threshold, side="left")
    if exhaustive:  # the identity is among the enumerated relabellings
        p_unc, p_fwe = counts / total, exceed_max / total
    else:
        p_unc, p_fwe = (1 + counts) / (1 + total), (1 + exceed_max) / (1 + total)
    if isinstance(engine, _FreedmanLane):
        effect = engine.a @ y
        name = "glm" if engine.kind == "permute" else "glm-one-sample"
    elif isinstance(engine, _TwoSample):
        effect = y[group > 0].mean(axis=0) - y[group < 0].mean(axis=0)
        name = statistic
    else:
        effect, name = y.mean(axis=0), "one-sample"
    return PermutationResult(
        effect=effect,
        t=t_obs,
        p_uncorrected=p_unc,
        p_fwe=p_fwe,
        p_fdr=fdr_bh(p_unc),
        null_max=maxima,
        statistic=name,
        tail=tail,
        n_permutations=total,
        exhaustive=exhaustive,
        df=engine.df,
    )

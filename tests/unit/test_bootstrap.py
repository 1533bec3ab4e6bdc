"""Bootstrap CIs vs scipy.stats.bootstrap (same index stream, so exact) and normal closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.bootstrap import (
    BOOTSTRAP_BLOCK,
    bootstrap_indices,
    bootstrap_mean_ci,
    bootstrap_statistic_ci,
    iter_bootstrap_indices,
    paired_bootstrap,
    paired_bootstrap_mean_diff,
    percentile_ci,
)

# Same resample indices and the same linear-interpolated quantile: only summation order differs.
REL_TOL_VS_SCIPY = 1e-12
# Closed form: percentile CI of the mean vs mean +- z * s/sqrt(n). With R=20,000 the Monte-Carlo
# error of a 2.5 % quantile is about 1 % of the half-width; 5 % allows ~5 sd plus skew at n=400.
HALF_WIDTH_REL_TOL_VS_NORMAL = 0.05
# Bootstrap two-sided p-value vs the normal-theory p at z ~ 2: Monte-Carlo sd ~0.0015 at R=20,000.
P_VALUE_ABS_TOL_VS_NORMAL = 0.01
Z_975 = scipy.stats.norm.ppf(0.975)


def _scipy_ci(data: tuple[np.ndarray, ...], statistic, n_resamples: int, seed: int, paired: bool = False):
    res = scipy.stats.bootstrap(
        data,
        statistic,
        n_resamples=n_resamples,
        batch=BOOTSTRAP_BLOCK,
        method="percentile",
        confidence_level=0.95,
        paired=paired,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return res.confidence_interval.low, res.confidence_interval.high


def test_mean_ci_equals_scipy_percentile_bootstrap() -> None:
    x = np.random.default_rng(1).gamma(2.0, size=97)
    mean, low, high = bootstrap_mean_ci(x, n_resamples=1000, seed=7)
    ref_low, ref_high = _scipy_ci((x,), np.mean, 1000, 7)
    assert mean == pytest.approx(x.mean(), rel=REL_TOL_VS_SCIPY)
    assert low == pytest.approx(ref_low, rel=REL_TOL_VS_SCIPY)
    assert high == pytest.approx(ref_high, rel=REL_TOL_VS_SCIPY)


def test_generic_statistic_ci_equals_scipy_for_median() -> None:
    x = np.random.default_rng(2).normal(size=61)
    low, high = bootstrap_statistic_ci(x.size, lambda idx: float(np.median(x[idx])), n_resamples=600, seed=3)
    ref_low, ref_high = _scipy_ci((x,), np.median, 600, 3)
    assert (low, high) == pytest.approx((ref_low, ref_high), rel=REL_TOL_VS_SCIPY)


def test_paired_ci_equals_scipy_paired_bootstrap() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=80), rng.normal(0.3, size=80)
    res = paired_bootstrap_mean_diff(a, b, n_resamples=700, seed=11)
    ref = _scipy_ci((a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), 700, 11, paired=True)
    assert (res.ci_low, res.ci_high) == pytest.approx(ref, rel=REL_TOL_VS_SCIPY)
    generic = paired_bootstrap(80, lambda i: a[i].mean(), lambda i: b[i].mean(), n_resamples=700, seed=11)
    assert (generic.ci_low, generic.ci_high) == pytest.approx(ref, rel=REL_TOL_VS_SCIPY)
    assert generic.p_value == res.p_value


def test_mean_ci_matches_normal_closed_form() -> None:
    x = np.random.default_rng(5).normal(3.0, 2.0, size=400)
    mean, low, high = bootstrap_mean_ci(x, n_resamples=20_000, seed=0)
    half = Z_975 * x.std(ddof=0) / np.sqrt(x.size)  # the bootstrap's plug-in standard error
    assert abs((high - mean) - half) <= HALF_WIDTH_REL_TOL_VS_NORMAL * half
    assert abs((mean - low) - half) <= HALF_WIDTH_REL_TOL_VS_NORMAL * half


def test_paired_p_value_matches_normal_theory() -> None:
    rng = np.random.default_rng(6)
    d = rng.normal(0.0, 1.0, size=400)
    d = d - d.mean() + 0.1  # observed mean difference exactly 0.1
    res = paired_bootstrap_mean_diff(d, np.zeros_like(d), n_resamples=20_000, seed=1)
    z = 0.1 / (d.std(ddof=0) / np.sqrt(d.size))
    assert res.p_value == pytest.approx(2 * scipy.stats.norm.sf(z), abs=P_VALUE_ABS_TOL_VS_NORMAL)
    assert res.difference == pytest.approx(0.1)


def test_paired_identical_and_separated() -> None:
    a = np.random.default_rng(8).normal(size=50)
    same = paired_bootstrap_mean_diff(a, a, n_resamples=300, seed=0)
    assert (same.difference, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    apart = paired_bootstrap_mean_diff(a + 4.0, a, n_resamples=300, seed=0)
    assert apart.p_value == pytest.approx(2 / 301)  # two-sided: no replicate on the far side of 0
    assert apart.ci_low == pytest.approx(4.0) and apart.ci_high == pytest.approx(4.0)


def test_indices_seeded_blocked_and_in_range() -> None:
    full = bootstrap_indices(13, 600, seed=9)
    assert full.shape == (600, 13) and full.min() >= 0 and full.max() <= 12
    blocks = list(iter_bootstrap_indices(13, 600, seed=9))
    assert [b.shape[0] for b in blocks] == [256, 256, 88]
    np.testing.assert_array_equal(np.concatenate(blocks), full)
    np.testing.assert_array_equal(bootstrap_indices(13, 600, seed=9), full)
    assert not np.array_equal(bootstrap_indices(13, 600, seed=10), full)


def test_seed_determinism_and_order_of_constant_set() -> None:
    x = np.random.default_rng(0).uniform(size=30)
    assert bootstrap_mean_ci(x, 200, seed=5) == bootstrap_mean_ci(x, 200, seed=5)
    assert bootstrap_mean_ci(x, 200, seed=5) != bootstrap_mean_ci(x, 200, seed=6)
    assert bootstrap_mean_ci(np.full(20, 0.25), 100, seed=1) == (0.25, 0.25, 0.25)


def test_percentile_ci_linear_interpolation() -> None:
    reps = np.arange(101, dtype=float)  # q(2.5 %) = 2.5, q(97.5 %) = 97.5 by linear interpolation
    assert percentile_ci(reps) == (2.5, 97.5)
    assert percentile_ci(reps, alpha=0.1) == (5.0, 95.0)


def test_non_finite_fails_loudly() -> None:
    with pytest.raises(TrecsEvalError, match="not finite"):
        bootstrap_mean_ci([1.0, np.nan, 2.0])
    with pytest.raises(TrecsEvalError, match="not finite"):
        bootstrap_statistic_ci(5, lambda idx: np.nan if 0 not in idx else 1.0, n_resamples=50)
    with pytest.raises(TrecsEvalError, match="aligned"):
        paired_bootstrap_mean_diff([1.0, 2.0], [1.0])
    with pytest.raises(TrecsEvalError, match="alpha"):
        percentile_ci([1.0, 2.0], alpha=1.5)
    with pytest.raises(TrecsEvalError, match="at least 1"):
        bootstrap_mean_ci([])


def test_paired_p_value_agrees_with_percentile_ci_on_a_skewed_statistic() -> None:
    # Variance ratios of lognormal data are strongly skewed, as FID differences are: the verdict
    # "CI excludes 0" and "p < alpha" must not disagree there.
    rng = np.random.default_rng(3)
    verdicts = []
    for shrink in (1.0, 0.8, 0.6, 0.4):
        a = rng.lognormal(sigma=1.0, size=80)
        b = rng.lognormal(sigma=1.0, size=80) * shrink
        res = paired_bootstrap(80, lambda i, a=a: float(np.var(a[i])),
                               lambda i, b=b: float(np.var(b[i])), n_resamples=999, seed=1)
        excludes_zero = res.ci_low > 0.0 or res.ci_high < 0.0
        assert excludes_zero == (res.p_value < res.alpha), res
        verdicts.append(excludes_zero)
    assert any(verdicts) and not all(verdicts)  # the cases span both outcomes

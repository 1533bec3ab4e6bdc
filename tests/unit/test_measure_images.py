"""The FID/KID resample statistics equal the metric modules' own computations, and the engine's
intervals are the delta-method intervals of :mod:`trecs_eval.metrics.intervals`."""

from __future__ import annotations

import numpy as np
import pytest

from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.metrics import engine, fid, intervals, kid
from trecs_eval.metrics.bootstrap import iter_bootstrap_indices
from trecs_eval.metrics.resample import ReferenceSet, fid_statistic, kid_statistic

FID_RESAMPLE_REL_TOL = 1e-8  # two exact float64 formulas (n×n vs d×d eigenproblems)
KID_RESAMPLE_ABS_TOL = 1e-12  # the same sums in another order
N, D = 52, 64  # KID needs >= 50 per side


def _as_features(pool: np.ndarray) -> InceptionFeatures:
    identity = ExtractorIdentity(name="test", weights_sha256="0" * 64, layers=("2048",), preprocessing="tf1")
    return InceptionFeatures(pool=pool, logits=np.zeros((len(pool), 8)),
                             paths=tuple(map(str, range(len(pool)))), identity=identity)


def fid_with_ci(gen, ref, n_resamples, alpha, seed):
    return engine.image_metrics(_as_features(gen), _as_features(ref), ["fid"], seed=seed,
                                n_bootstrap=n_resamples, alpha=alpha)[0]


def kid_with_ci(gen, ref, n_subsets, n_resamples, alpha, seed):
    return engine.image_metrics(_as_features(gen), _as_features(ref), ["kid"], seed=seed,
                                n_bootstrap=n_resamples, alpha=alpha, kid_subsets=n_subsets)[0]


@pytest.fixture
def features() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.normal(size=(N, D)) + 0.3, rng.normal(size=(N, D))


def test_fid_resamples_equal_fid_against_reference(features):
    gen, ref = features
    fast = fid_statistic(gen, ReferenceSet(ref))
    slow = fid.FidAgainstReference(fid.features_to_statistics(ref))
    for idx in next(iter(iter_bootstrap_indices(N, 5, seed=1))):
        assert fast(idx) == pytest.approx(slow(gen[idx]), rel=FID_RESAMPLE_REL_TOL)
    result = fid_with_ci(gen, ref, n_resamples=50, alpha=0.05, seed=1)
    assert result.value == pytest.approx(fid.features_to_fid(gen, ref)[0], rel=0)
    # The interval is the delta-method one around the value (a bootstrap of resamples
    # with repeated images sat above the estimate), so it contains the value.
    expected = intervals.delta_interval(intervals.fid_influence(gen, ref), 0.05)
    assert (result.ci_low, result.ci_high) == pytest.approx((expected.low, expected.high), rel=1e-9)
    assert result.ci_low < result.value < result.ci_high


def test_kid_resamples_equal_kid_kernels_when_subsets_are_whole_sets(features):
    gen, ref = features
    fast = kid_statistic(gen, ReferenceSet(ref))
    kernels = kid.KidKernels(gen, ref)
    for idx in next(iter(iter_bootstrap_indices(N, 5, seed=2))):
        expected = kernels.kid(seed=0, n_subsets=1, rows1=idx).mean  # subset size n = m: the whole sets
        assert fast(idx) == pytest.approx(expected, abs=KID_RESAMPLE_ABS_TOL)
    result = kid_with_ci(gen, ref, n_subsets=10, n_resamples=50, alpha=0.05, seed=2)
    # n = m = 52 <= 1000: every subset is the whole set, so the subset mean is the all-pairs value.
    assert result.value == pytest.approx(kernels.kid(seed=2, n_subsets=10).mean, rel=1e-12)
    assert result.value == pytest.approx(fast(np.arange(N)), rel=1e-12)
    assert result.ci_low < result.value < result.ci_high


def test_no_resamples_means_no_interval(features):
    gen, ref = features
    assert np.isnan(fid_with_ci(gen, ref, n_resamples=0, alpha=0.05, seed=0).ci_low)

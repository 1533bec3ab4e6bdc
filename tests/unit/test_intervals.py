"""Interval machinery: influence values are the derivatives they claim, intervals contain their
estimates and cover in a small simulation, clusters widen intervals, Holm adjusts correctly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from trecs_eval.metrics import intervals
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci, paired_bootstrap_mean_diff
from trecs_eval.metrics.fid import features_to_fid, features_to_statistics
from trecs_eval.metrics.resample import ReferenceSet, kid_statistic

# The empirical influence values use ddof=1 covariances and are centred; the finite-difference
# derivative below uses 1/n weights: they differ by O(1/n) relative (n = 400 here).
INFLUENCE_REL_TOL = 0.03
VALUE_REL_TOL = 1e-9  # same float64 quantity through an SVD of G instead of features_to_fid's path
EPSILON = 1e-5


def _weighted_fid(x: np.ndarray, w: np.ndarray, y: np.ndarray) -> float:
    """FID with 1/n-weighted generated moments (weights w, sum 1), through scipy's sqrtm."""
    mu = w @ x
    centred = x - mu
    s = (centred * w[:, None]).T @ centred
    mu_r = y.mean(axis=0)
    s_r = np.cov(y, rowvar=False, ddof=1)
    covmean = sqrtm(s @ s_r).real
    return float(np.sum((mu - mu_r) ** 2) + np.trace(s) + np.trace(s_r) - 2 * np.trace(covmean))


def test_fid_influence_values_are_derivatives_of_fid_in_item_weights() -> None:
    rng = np.random.default_rng(0)
    n, d = 400, 6
    x = rng.normal(0.4, 1.0, (n, d)) * np.linspace(0.5, 1.5, d)
    y = rng.normal(0.0, 1.0, (300, d))
    found = intervals.fid_influence(x, y)
    base = np.full(n, 1.0 / n)
    for i in (0, 7, 123):
        bumped = (1 - EPSILON) * base
        bumped[i] += EPSILON
        derivative = (_weighted_fid(x, bumped, y) - _weighted_fid(x, base, y)) / EPSILON
        assert found.generated[i] == pytest.approx(derivative, rel=INFLUENCE_REL_TOL, abs=0.01)


@pytest.mark.parametrize(("n", "m", "d"), [(50, 70, 16), (30, 20, 48), (12, 40, 40)])
def test_fid_and_kid_influence_values_equal_the_metrics(n: int, m: int, d: int) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.normal(0.3, 1.0, (n, d)), rng.normal(0.0, 1.2, (m, d))
    assert intervals.fid_influence(x, y).value == pytest.approx(features_to_fid(x, y)[0], rel=VALUE_REL_TOL)
    stats = features_to_statistics(y)
    fixed = intervals.fid_influence_fixed_reference(x, stats.mu, stats.sigma)
    assert fixed.value == pytest.approx(features_to_fid(x, y)[0], rel=VALUE_REL_TOL)
    assert fixed.reference is None
    kid = intervals.kid_influence(x, y)
    assert kid.value == pytest.approx(kid_statistic(x, ReferenceSet(y))(np.arange(n)), rel=VALUE_REL_TOL)
    for influence in (intervals.fid_influence(x, y), kid):
        assert abs(influence.generated.sum()) < 1e-8 * np.abs(influence.generated).sum()


def _simulate(reps: int, n: int, d: int, seed: int) -> dict[str, float]:
    """Coverage of the FID and KID delta intervals for their expectation at (n, n)."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(0.5, 1.5, d)
    fids, fid_se, kids, kid_se = [], [], [], []
    for _ in range(reps):
        x = rng.normal(0.3, 1.4, (n, d)) * scale
        y = rng.normal(0.0, 1.0, (n, d)) * scale
        for found, values, ses in ((intervals.fid_influence(x, y), fids, fid_se),
                                   (intervals.kid_influence(x, y), kids, kid_se)):
            interval = intervals.delta_interval(found, 0.05)
            assert interval.low <= found.value <= interval.high
            values.append(found.value)
            ses.append(interval.se)
    out = {}
    for name, values, ses in (("fid", fids, fid_se), ("kid", kids, kid_se)):
        v, s = np.array(values), np.array(ses)
        # Truth: the Monte Carlo mean (expectation at this n); its own error is sd/sqrt(reps).
        out[name] = float(np.mean(np.abs(v - v.mean()) <= 1.96 * s))
    return out


# 150 replications: a true 95 % coverage lands in [0.90, 0.99] with probability > 0.99.
COVERAGE_BOUNDS = (0.90, 0.99)


def test_delta_intervals_cover_at_nominal_rate_in_a_small_simulation() -> None:
    coverage = _simulate(reps=150, n=120, d=8, seed=1)
    for name, value in coverage.items():
        assert COVERAGE_BOUNDS[0] <= value <= COVERAGE_BOUNDS[1], (name, value)


def test_split_t_interval_and_paired_split_test() -> None:
    scores = np.array([3.1, 2.9, 3.3, 3.0, 3.2])
    found = intervals.split_t_interval(scores, 0.05)
    assert found.low < scores.mean() < found.high
    # t_{4, 0.975} = 2.776 (tables)
    assert found.high - scores.mean() == pytest.approx(2.776 * scores.std(ddof=1) / np.sqrt(5), rel=1e-3)
    same = intervals.paired_split_test(scores, scores, 0.05)
    assert same.p_value == 1.0 and same.difference == 0.0
    shifted = intervals.paired_split_test(scores, scores + np.array([1.0, 1.1, 0.9, 1.0, 1.05]), 0.05)
    assert shifted.p_value < 0.001 and shifted.ci_low > 0


def test_holm_and_bonferroni_adjustments() -> None:
    p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    holm = intervals.adjust_p_values(p, "holm")
    # sorted 0.005, 0.01, 0.03, 0.04 with m = 4: 0.02, 0.03, 0.06, max(0.06, 0.04) = 0.06
    assert holm[[4, 0, 2, 1]].tolist() == pytest.approx([0.02, 0.03, 0.06, 0.06])
    assert np.isnan(holm[3])
    assert intervals.adjust_p_values(p, "bonferroni")[[0, 1]].tolist() == pytest.approx([0.04, 0.16])
    assert intervals.adjust_p_values(p, "none")[1] == 0.04
    with pytest.raises(Exception, match="unknown correction"):
        intervals.adjust_p_values(p, "sidak")


def test_cluster_bootstrap_widens_when_narratives_of_one_image_are_duplicated() -> None:
    rng = np.random.default_rng(3)
    per_image = rng.normal(0.5, 0.2, 60)
    # Each image described 4 times with near-identical scores: 240 narratives, 60 images.
    values = np.repeat(per_image, 4) + rng.normal(0, 0.01, 240)
    images = np.repeat([f"img{i}" for i in range(60)], 4)
    _, low_items, high_items = bootstrap_mean_ci(values, 1000, seed=0)
    _, low_images, high_images = bootstrap_mean_ci(values, 1000, seed=0, clusters=images)
    # Treating 240 correlated narratives as independent shrinks the interval by ~sqrt(4) = 2.
    assert (high_images - low_images) > 1.7 * (high_items - low_items)
    # Singleton clusters are the plain bootstrap, bit for bit.
    singles = bootstrap_mean_ci(values, 500, seed=2, clusters=[str(i) for i in range(240)])
    assert singles == bootstrap_mean_ci(values, 500, seed=2)
    paired = paired_bootstrap_mean_diff(values + 0.01, values, 200, seed=0, clusters=images)
    assert paired.n_clusters == 60 and paired.n == 240


def test_containment_warning() -> None:
    assert intervals.containment_warning("fid", 1.0, 0.5, 2.0) == ()
    assert "does not contain" in intervals.containment_warning("fid", 3.0, 0.5, 2.0)[0]
    assert intervals.containment_warning("fid", 3.0, float("nan"), float("nan")) == ()


def test_clip_score_interval_widens_when_narratives_of_one_image_are_duplicated() -> None:
    from trecs_eval.metrics.clip_score import compute_clip_score

    rng = np.random.default_rng(5)
    images = rng.normal(size=(40, 16))
    texts = images + rng.normal(0, 1.0, (40, 16))
    once = compute_clip_score([f"n{i}" for i in range(40)], images, texts, n_resamples=1000,
                              clusters=[f"img{i}" for i in range(40)])
    # The same 40 images, each narrative written down three times (as LN-COCO's several annotators):
    repeated = compute_clip_score([f"n{i}" for i in range(120)], np.repeat(images, 3, axis=0),
                                  np.repeat(texts, 3, axis=0), n_resamples=1000,
                                  clusters=[f"img{i}" for i in np.repeat(np.arange(40), 3)])
    naive = compute_clip_score([f"n{i}" for i in range(120)], np.repeat(images, 3, axis=0),
                               np.repeat(texts, 3, axis=0), n_resamples=1000)
    width = {name: r.ci_high - r.ci_low for name, r in (("once", once), ("clustered", repeated),
                                                         ("naive", naive))}
    assert repeated.value == pytest.approx(once.value)
    assert repeated.params["n_clusters"] == 40 and naive.params["n_clusters"] == 120
    # Clustered: no information gained from copies, so about the 40-image width; naive: ~1/sqrt(3) of it.
    assert width["clustered"] == pytest.approx(width["once"], rel=0.2)
    assert width["naive"] < 0.75 * width["clustered"]

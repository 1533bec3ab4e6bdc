"""Chan-merged shard moments equal a single pass (mean, covariance, FID) at 1e-10 relative."""

from __future__ import annotations

import numpy as np
import pytest

from trecs_eval.errors import TrecsEvalError
from trecs_eval.execution.moments import FeatureMoments, merge_moments
from trecs_eval.metrics.fid import features_to_statistics, statistics_to_fid

MERGE_REL_TOL = 1e-10  # float64 merge vs one pass over the same float32 features
N, DIM = 301, 24


def features(seed: int = 0) -> np.ndarray:
    """float32 features with a large common offset: raw sums of products would lose digits here."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(DIM, DIM))
    return (rng.normal(size=(N, DIM)) @ mix + 300.0).astype(np.float32)


def shards(x: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """``k`` contiguous shards of uneven sizes; with k > 2 one of them is empty."""
    if k == 1:
        return [x]
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(x)), size=k - 1, replace=False))
    if k > 2:
        cuts[k // 2] = cuts[k // 2 - 1]  # an empty shard in the middle
    return np.split(x, cuts)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("k", [1, 2, 7])
def test_merged_shards_equal_a_single_pass(k: int) -> None:
    x = features()
    parts = shards(x, k, seed=k)
    assert sum(len(p) for p in parts) == N
    if k == 7:
        assert any(len(p) == 0 for p in parts) and len({len(p) for p in parts}) > 2
    merged = merge_moments([FeatureMoments.of(p) for p in parts])
    single = features_to_statistics(x)  # numpy mean and np.cov: an independent one-pass reference
    assert merged.n == N
    assert rel_err(merged.mean, single.mu) < MERGE_REL_TOL
    assert rel_err(merged.covariance(), single.sigma) < MERGE_REL_TOL


def test_merge_order_and_grouping_do_not_matter() -> None:
    x = features(1)
    parts = [FeatureMoments.of(p) for p in shards(x, 7, seed=3)]
    left_fold = parts[0]
    for part in parts[1:]:
        left_fold = left_fold.merge(part)
    reversed_tree = merge_moments(parts[::-1])
    assert rel_err(left_fold.covariance(), reversed_tree.covariance()) < MERGE_REL_TOL
    assert rel_err(left_fold.mean, reversed_tree.mean) < MERGE_REL_TOL


def test_fid_from_merged_moments_equals_fid_from_all_features() -> None:
    x, y = features(2), features(3) + np.float32(0.5)
    merged = merge_moments([FeatureMoments.of(p) for p in shards(x, 7, seed=5)]).to_gaussian()
    direct, _ = statistics_to_fid(features_to_statistics(x), features_to_statistics(y))
    via_merge, _ = statistics_to_fid(merged, features_to_statistics(y))
    assert abs(via_merge - direct) <= MERGE_REL_TOL * abs(direct)


def test_empty_shards_are_the_identity_and_bad_input_fails_loudly() -> None:
    x = features(4)
    whole = FeatureMoments.of(x)
    empty = FeatureMoments.empty(DIM)
    assert empty.merge(whole) is whole and whole.merge(empty) is whole
    with pytest.raises(TrecsEvalError, match="dimension"):
        whole.merge(FeatureMoments.empty(DIM + 1))
    with pytest.raises(TrecsEvalError, match="NaN"):
        FeatureMoments.of(np.full((3, DIM), np.nan))
    with pytest.raises(TrecsEvalError, match="at least 2"):
        FeatureMoments.of(x[:1]).covariance()

"""Exactly mergeable first and second moments of feature shards (Chan, Golub & LeVeque 1979).

A shard of features ``x_1..x_n`` (rows, d columns) is summarised in float64 by

    n,   s = sum_i x_i,   M = sum_i (x_i - s/n)(x_i - s/n)^T      (centred, not raw, products)

and two summaries merge without revisiting the features:

    n = n_a + n_b,   s = s_a + s_b,   delta = s_b/n_b - s_a/n_a,
    M = M_a + M_b + (n_a n_b / n) delta delta^T

so the mean ``s/n`` and the covariance ``M/(n-1)`` (ddof=1, as :mod:`trecs_eval.metrics.fid`)
of any number of shards, merged in any grouping, equal a single pass over all features up to
float64 round-off (``MERGE_REL_TOL`` in the tests: 1e-10 relative). Centred products are what
keep this exact: raw sums of outer products lose about ``log10(|mean|^2 / var)`` digits to
cancellation, Chan's update loses none. An empty shard is the identity of the merge.

These are the FID inputs a distributed reduction needs (per-item metrics need no merge; KID and
PRDC need the features themselves). Example::

    parts = [FeatureMoments.of(f) for f in shards]
    stats = merge_moments(parts).to_gaussian()      # == features_to_statistics(all features)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.fid import GaussianStatistics


@dataclass(frozen=True)
class FeatureMoments:
    """Count, float64 sum (d,) and centred second moment (d, d) of one shard (or of merged shards)."""

    n: int
    total: np.ndarray
    centred: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> FeatureMoments:
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureMoments:
        """Moments of an (n, d) shard, in two passes over it (mean, then centred products)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise TrecsEvalError(f"feature moments need an (n, d) matrix, got shape {x.shape}")
        if len(x) == 0:
            return cls.empty(x.shape[1])
        if not np.all(np.isfinite(x)):
            raise TrecsEvalError("features contain NaN or inf; their moments are undefined")
        centred = x - x.mean(axis=0)
        return cls(len(x), x.sum(axis=0), centred.T @ centred)

    @property
    def dim(self) -> int:
        return int(self.total.shape[0])

    @property
    def mean(self) -> np.ndarray:
        if self.n == 0:
            raise TrecsEvalError("the mean of an empty feature set is undefined")
        return self.total / self.n

    def merge(self, other: FeatureMoments) -> FeatureMoments:
        """Chan's pairwise update (module docstring); either side may be empty."""
        if other.dim != self.dim:
            raise TrecsEvalError(f"cannot merge feature moments of dimension {self.dim} and {other.dim}")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        centred = self.centred + other.centred + np.outer(delta, delta) * (self.n * other.n / n)
        return FeatureMoments(n, self.total + other.total, centred)

    def covariance(self) -> np.ndarray:
        """Unbiased (ddof=1) covariance ``M / (n - 1)``; needs n >= 2."""
        if self.n < 2:
            raise TrecsEvalError(f"a covariance needs at least 2 samples, got {self.n}")
        return self.centred / (self.n - 1)

    def to_gaussian(self) -> GaussianStatistics:
        """The FID statistics (mean, ddof=1 covariance, n) of everything merged so far."""
        return GaussianStatistics(self.mean, self.covariance(), self.n)


def merge_moments(parts: Sequence[FeatureMoments]) -> FeatureMoments:
    """Merge shards pairwise as a balanced tree (round-off grows with log K, not K)."""
    if not parts:
        raise TrecsEvalError("no feature moments to merge")
    level = list(parts)
    while len(level) > 1:
        pairs = [level[i].merge(level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]

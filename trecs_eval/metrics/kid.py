"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic kernel.

    k(x, y) = (x·y / d + 1)^3
    MMD²_u = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
             - 2 sum_{i,j} k(x_i, y_j) / m²

averaged over ``n_subsets`` (100) random subsets of size ``m = min(1000, n1, n2)`` drawn without
replacement; reported as mean ± std over subsets (unit: squared feature units; lower is better;
often printed x1000). The subsets are drawn exactly as torch-fidelity draws them —
``rng = np.random.RandomState(seed)``; per subset ``rng.choice(n1, m, replace=False)`` then
``rng.choice(n2, m, replace=False)`` — so with the same seed the values agree with it.
The three kernel matrices are computed once for all pairs when they fit
(``n <= PRECOMPUTE_MAX_SAMPLES``); subsets and bootstrap resamples then only index into them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.types import MetricInfo

INFO = MetricInfo("kid", higher_is_better=False, unit="squared pool3 units",
                  description="Kernel Inception Distance, cubic polynomial kernel, unbiased MMD²")
MIN_KID_SAMPLES = 50  # below this the subset estimates are too noisy to report
DEFAULT_SUBSETS = 100
MAX_SUBSET_SIZE = 1000
PRECOMPUTE_MAX_SAMPLES = 6000  # three n x n float64 kernels (<= 860 MB at this n)


@dataclass(frozen=True)
class KidResult:
    """Mean and (population) std of MMD² over subsets, with the per-subset values."""

    mean: float
    std: float
    subset_values: np.ndarray
    subset_size: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x·y / d + 1)^3 for all pairs of rows, float64."""
    return (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD² from the three m x m kernel matrices (diagonals of k_xx, k_yy excluded)."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def _check(n1: int, n2: int, subset_size: int | None) -> int:
    if min(n1, n2) < MIN_KID_SAMPLES:
        raise TrecsEvalError(f"KID needs at least {MIN_KID_SAMPLES} images per side, got {n1} and {n2}")
    size = min(MAX_SUBSET_SIZE, n1, n2) if subset_size is None else subset_size
    if not 2 <= size <= min(n1, n2):
        raise TrecsEvalError(f"KID subset size {size} must lie in [2, min(n1, n2) = {min(n1, n2)}]")
    return size


class KidKernels:
    """Kernel matrices of two feature sets (precomputed when small enough), for many KID calls."""

    def __init__(self, features1: np.ndarray, features2: np.ndarray) -> None:
        self.x, self.y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
        if self.x.ndim != 2 or self.y.ndim != 2 or self.x.shape[1] != self.y.shape[1]:
            raise TrecsEvalError(f"KID needs (n, d) features of equal d, got {self.x.shape}, {self.y.shape}")
        self.precomputed = max(len(self.x), len(self.y)) <= PRECOMPUTE_MAX_SAMPLES
        if self.precomputed:
            self.k_xx = polynomial_kernel(self.x, self.x)
            self.k_yy = polynomial_kernel(self.y, self.y)
            self.k_xy = polynomial_kernel(self.x, self.y)

    def mmd2(self, idx1: np.ndarray, idx2: np.ndarray) -> float:
        """MMD² of the subsets x[idx1], y[idx2] (indices may repeat, e.g. in a bootstrap)."""
        if self.precomputed:
            return mmd2_unbiased(self.k_xx[np.ix_(idx1, idx1)], self.k_xy[np.ix_(idx1, idx2)],
                                 self.k_yy[np.ix_(idx2, idx2)])
        x, y = self.x[idx1], self.y[idx2]
        return mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))

    def kid(self, *, seed: int, n_subsets: int = DEFAULT_SUBSETS, subset_size: int | None = None,
            rows1: np.ndarray | None = None) -> KidResult:
        """KID over seeded subsets; ``rows1`` re-indexes the first set (bootstrap resample)."""
        rows = np.arange(len(self.x)) if rows1 is None else np.asarray(rows1)
        n1, n2 = len(rows), len(self.y)
        size = _check(n1, n2, subset_size)
        if n_subsets < 1:
            raise TrecsEvalError(f"KID needs n_subsets >= 1, got {n_subsets}")
        rng = np.random.RandomState(seed)
        values = np.empty(n_subsets)
        for s in range(n_subsets):
            idx1 = rows[rng.choice(n1, size, replace=False)]
            idx2 = rng.choice(n2, size, replace=False)
            values[s] = self.mmd2(idx1, idx2)
        if not np.all(np.isfinite(values)):
            raise TrecsEvalError("KID subset value is not finite; features contain NaN or inf")
        return KidResult(float(values.mean()), float(values.std()), values, size)


def features_to_kid(features1: np.ndarray, features2: np.ndarray, *, seed: int,
                    n_subsets: int = DEFAULT_SUBSETS, subset_size: int | None = None) -> KidResult:
    """KID between two (n, d) feature sets (see the module doc). >= 50 samples per side."""
    _check(len(features1), len(features2), subset_size)
    return KidKernels(features1, features2).kid(seed=seed, n_subsets=n_subsets,
                                                 subset_size=subset_size)

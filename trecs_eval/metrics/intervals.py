"""Confidence intervals that mean what they say: which quantity each one covers, and why.

**FID and KID: delta method (infinitesimal jackknife), clustered.** Both are smooth functionals
``F(P_gen, P_ref)`` of the two feature distributions, so to first order
``F(P_n, Q_m) - E F = (1/n) sum_i IF_g(x_i) + (1/m) sum_l IF_r(y_l)`` with the influence
functions ``IF`` evaluated at the sample (empirical influence values, exact derivatives of the
plug-in estimator with respect to each item's weight). Their variance is estimated by

    Var = C_g/(C_g - 1) * sum_c (sum_{i in c} IF_g(x_i))^2 / n^2  +  (same over reference items)

where ``c`` runs over clusters (images; every item its own cluster when there are no repeats):
a run passes the image of each generated item (its narrative's) and of each reference row
(:class:`ImageClusters`), so narratives of one image count as one sampling unit. The interval is
``value ± z_{1-alpha/2} sqrt(Var)``. **It covers "the metric at this
(n, m)"**: the expectation of the estimator at these sample sizes, which for FID is not the
population FID (FID is biased upwards, ~1/n; use ``fid_inf`` for n -> infinity) and for KID is
(the unbiased MMD² is unbiased). Why not the percentile bootstrap: a resample with duplicates
has ~0.632 n distinct items, so resampled FIDs sit *above* the estimate (the interval
[190.0, 206.9] around FID 173.6 on real COCO photos); the delta method has no such distortion, is
symmetric around the estimate (so it always contains it), costs one eigendecomposition instead
of hundreds, and is measured to cover in ``benchmarks/bench_coverage.py``. When generated and
reference distributions are *equal* (population FD = 0, MMD² = 0) its first-order term vanishes
and the FID interval *over*-covers FID at n (measured 1.00 at d = 64, n = 200 and at d = 8,
n = 120; ``--degenerate``): conservative, not wrong. The FID_inf interval keeps its nominal rate
there: it covered the population value 0 in 0.945 of 200 replications (d = 64, n = 200).

FID influence values (``u = x - mu_g``, ``v = y - mu_r``, ``T`` the optimal-transport map
between the two Gaussians, ``tr sqrt(S_g S_r)``'s derivative ``1/2 T``):

    IF_g(x) = 2 (mu_g - mu_r).u + |u|^2 - u^T T_g u   (centred),
    T_g = S_r^1/2 (S_r^1/2 S_g S_r^1/2)^-1/2 S_r^1/2

computed without any d x d inverse from the SVD of ``G = X_c Y_c^T / sqrt((n-1)(m-1))``
(``X_c, Y_c`` centred features; ``||G||_* = tr sqrt(S_g S_r)``): with ``G = U D V^T``,
``u_i^T T_g u_i = (n-1) sum_j D_j U_ij^2`` and ``v_l^T T_r v_l = (m-1) sum_j D_j V_lj^2``.

KID (unbiased MMD², kernel ``k``): ``IF_g(x_i) = 2 (mean_{j!=i} k(x_i, x_j) - mean_l k(x_i, y_l))``
and symmetrically for the reference (centred): the Hoeffding projections of the U-statistic.

**IS: t-interval over splits.** The reported IS is the mean of ``k`` split scores computed on
disjoint chunks of a random permutation, i.e. ``k`` independent IS values at chunk size n/k;
``mean ± t_{k-1, 1-alpha/2} s/sqrt(k)`` covers "IS at chunk size n/k" (the quantity the number
estimates) and contains it. The paired version (gate) uses the per-split differences.

**Per-item means (CLIPScore, R-precision, trace-canvas accuracy):** percentile bootstrap in
:mod:`trecs_eval.metrics.bootstrap`, resampling clusters (images) when an image has several
narratives; it covers the population mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.resample import ReferenceSet, kernel_row_sums

if TYPE_CHECKING:
    from trecs_eval.metrics.types import MetricInputs

CORRECTIONS = ("holm", "bonferroni", "none")
DEFAULT_CORRECTION = "holm"


@dataclass(frozen=True)
class Influence:
    """A statistic's value on the full sets and its empirical influence values per item."""

    value: float
    generated: np.ndarray  # (n,) centred
    reference: np.ndarray | None  # (m,) centred, None when the reference is fixed (saved statistics)


@dataclass(frozen=True)
class Interval:
    """``value`` with ``[low, high]``, its standard error and what the interval covers."""

    value: float
    low: float
    high: float
    se: float
    method: str
    covers: str
    n_clusters: int


def z_quantile(alpha: float) -> float:
    """``Phi^-1(1 - alpha/2)`` (1.96 for alpha = 0.05)."""
    if not 0.0 < alpha < 1.0:
        raise TrecsEvalError(f"alpha must lie in (0, 1) (0.05 gives a 95 % interval), got {alpha}")
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def cluster_codes(clusters: Sequence[object] | None, n: int) -> tuple[np.ndarray, int]:
    """``(codes, C)``: cluster index per item in order of first appearance (items alone: 0..n-1)."""
    if clusters is None:
        return np.arange(n), n
    labels = [str(c) for c in clusters]
    if len(labels) != n:
        raise TrecsEvalError(f"{len(labels)} cluster labels for {n} items")
    first: dict[str, int] = {}
    codes = np.array([first.setdefault(label, len(first)) for label in labels], dtype=np.int64)
    return codes, len(first)


def clustered_variance(influence: np.ndarray, codes: np.ndarray, n_clusters: int) -> float:
    """Variance of ``mean(influence)``: ``C/(C-1) sum_c (sum_{i in c} IF_i)^2 / n^2`` (IF centred)."""
    n = influence.size
    if n_clusters < 2:
        raise TrecsEvalError(f"an interval needs at least 2 clusters (images), got {n_clusters}")
    totals = np.bincount(codes, weights=influence - influence.mean(), minlength=n_clusters)
    return float(n_clusters / (n_clusters - 1) * np.sum(totals**2) / n**2)


def delta_variance(influence: Influence, codes: np.ndarray, n_clusters: int,
                   reference_clusters: Sequence[object] | None = None) -> float:
    """Generated-side plus reference-side variance of the statistic, each clustered by image
    (``reference_clusters``: the image of each reference item, e.g. when the reference set is
    the evaluation items' own images and an image serves several narratives)."""
    variance = clustered_variance(influence.generated, codes, n_clusters)
    if influence.reference is not None:
        ref_codes, ref_clusters = cluster_codes(reference_clusters, influence.reference.size)
        variance += clustered_variance(influence.reference, ref_codes, ref_clusters)
    return variance


def delta_interval(influence: Influence, alpha: float, clusters: Sequence[object] | None = None,
                   covers: str = "the statistic at this sample size",
                   reference_clusters: Sequence[object] | None = None) -> Interval:
    """``value ± z sqrt(Var)`` (module doc); symmetric, so it contains the value."""
    codes, n_clusters = cluster_codes(clusters, influence.generated.size)
    se = math.sqrt(delta_variance(influence, codes, n_clusters, reference_clusters))
    half = z_quantile(alpha) * se
    return Interval(influence.value, influence.value - half, influence.value + half, se,
                    "delta", covers, n_clusters)


@dataclass(frozen=True)
class ImageClusters:
    """The image of each generated item and of each reference item: the sampling unit of a
    set metric's interval. ``None`` on a side: every item is its own image (no repeats)."""

    generated: tuple[str, ...] | None = None
    reference: tuple[str, ...] | None = None

    @classmethod
    def of(cls, generated: Sequence[object] | None, reference: Sequence[object] | None = None
           ) -> ImageClusters:
        """From image ids (any hashable; compared as strings); an empty sequence means ``None``."""
        def labels(ids: Sequence[object] | None) -> tuple[str, ...] | None:
            return tuple(str(i) for i in ids) if ids is not None and len(ids) else None
        return cls(labels(generated), labels(reference))

    @classmethod
    def of_inputs(cls, inputs: MetricInputs) -> ImageClusters:
        """A metric's inputs: each generated item's narrative's image, each reference row's image."""
        return cls.of([n.image_id for n in inputs.narratives], inputs.reference_images)

    def variance(self, influence: Influence) -> float:
        """:func:`delta_variance` of ``influence`` clustered by these images on both sides."""
        codes, n_clusters = cluster_codes(self.generated, influence.generated.size)
        reference = self.reference if influence.reference is not None else None
        return delta_variance(influence, codes, n_clusters, reference)

    def params(self, n_generated: int) -> dict[str, float | int]:
        """What a result records about its sampling unit: images and narratives per image."""
        images = cluster_codes(self.generated, n_generated)[1]
        return {"n_images": images, "narratives_per_image": n_generated / images if images else math.nan}


ITEMS_ARE_IMAGES = ImageClusters()
"""No repeats on either side: every item is its own image."""


def _centred(values: np.ndarray) -> np.ndarray:
    return values - values.mean()


def _svd_by_gram(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``p = U diag(D) V^T`` (D > 0 only) via ``eigh`` of the smaller Gram matrix.

    ``eigh`` of the Gram was 50x faster than LAPACK's SVD here (see resample.py). Eigenvalues
    below 1e-14 of the largest are round-off of exact zeros (the centred rank is n-1); keeping
    them would add ~1e-8 of the largest singular value each to the nuclear norm.
    """
    small = p @ p.T if p.shape[0] <= p.shape[1] else p.T @ p
    values, vectors = np.linalg.eigh(small)
    keep = values > max(float(values.max()), 0.0) * 1e-14
    singular = np.sqrt(values[keep])
    vectors = vectors[:, keep]
    if p.shape[0] <= p.shape[1]:
        return singular, vectors, (p.T @ vectors / singular).T
    return singular, p @ vectors / singular, vectors.T


def _fid_generated_side(x: np.ndarray, mu_r: np.ndarray, factor: np.ndarray, trace_r: float
                        ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """FID of ``x`` against ``(mu_r, S_r = W^T W)``, its generated-side influence values, and
    ``(D, V^T)`` of ``X_c W^T / sqrt(n-1) = U D V^T`` (for the reference side)."""
    n = len(x)
    if n < 3:
        raise TrecsEvalError(f"an FID interval needs at least 3 generated items, got {n}")
    mu_g = x.mean(axis=0)
    u = x - mu_g
    singular, left, right_t = _svd_by_gram(u @ factor.T / math.sqrt(n - 1))
    diff = mu_g - mu_r
    value = float(diff @ diff) + float(np.sum(u * u)) / (n - 1) + trace_r - 2.0 * float(singular.sum())
    gen = 2.0 * u @ diff + np.sum(u * u, axis=1) - (n - 1) * (left**2 @ singular)
    return value, _centred(gen), singular, right_t


def fid_influence(features: np.ndarray, reference: ReferenceSet | np.ndarray) -> Influence:
    """FID (ddof=1 covariances) and its empirical influence values on both sides (module doc)."""
    ref = reference if isinstance(reference, ReferenceSet) else ReferenceSet(reference)
    x = np.asarray(features, dtype=np.float64)
    mu_r, factor, q = ref.whitened
    value, gen, singular, right_t = _fid_generated_side(x, mu_r, factor, float(np.sum(factor * factor)))
    m = len(ref.features)
    v = ref.features - mu_r
    right = q @ right_t.T  # right singular vectors of G = X_c Y_c^T / sqrt((n-1)(m-1)), per reference item
    diff = x.mean(axis=0) - mu_r
    reference_if = -2.0 * v @ diff + np.sum(v * v, axis=1) - (m - 1) * (right**2 @ singular)
    return Influence(value, gen, _centred(reference_if))


def fid_influence_fixed_reference(features: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray
                                  ) -> Influence:
    """As :func:`fid_influence` against saved statistics, which are held fixed (no reference term)."""
    from trecs_eval.metrics.fid import sqrt_psd

    root, _ = sqrt_psd(np.asarray(sigma_r, np.float64))
    value, gen, _, _ = _fid_generated_side(np.asarray(features, np.float64), np.asarray(mu_r, np.float64),
                                           root, float(np.trace(sigma_r)))
    return Influence(value, gen, None)


def kid_influence(features: np.ndarray, reference: ReferenceSet | np.ndarray) -> Influence:
    """Unbiased MMD² (cubic kernel) of all items vs all reference items, with its projections."""
    x = np.asarray(features, dtype=np.float64)
    ref = reference if isinstance(reference, ReferenceSet) else ReferenceSet(reference)
    y = ref.features
    n, m = len(x), len(y)
    if min(n, m) < 3:
        raise TrecsEvalError(f"a KID interval needs at least 3 items per side, got {n} and {m}")
    diag_x = (np.einsum("ij,ij->i", x, x) / x.shape[1] + 1.0) ** 3
    row_xx = kernel_row_sums(x, x)[0] - diag_x
    row_yy = ref.kid_rows
    row_xy, col_xy = kernel_row_sums(x, y)
    value = (row_xx.sum() / (n * (n - 1)) + row_yy.sum() / (m * (m - 1))
             - 2.0 * row_xy.sum() / (n * m))
    gen = 2.0 * (row_xx / (n - 1) - row_xy / m)
    reference_if = 2.0 * (row_yy / (m - 1) - col_xy / n)
    return Influence(float(value), _centred(gen), _centred(reference_if))


def split_t_interval(split_scores: Sequence[float] | np.ndarray, alpha: float) -> Interval:
    """``mean ± t_{k-1} s / sqrt(k)`` over ``k`` independent split scores (module doc)."""
    scores = np.asarray(split_scores, dtype=np.float64)
    k = scores.size
    if k < 2:
        raise TrecsEvalError(f"a split interval needs at least 2 splits, got {k}")
    se = float(scores.std(ddof=1) / math.sqrt(k))
    half = float(stats.t.ppf(1.0 - alpha / 2.0, k - 1)) * se
    mean = float(scores.mean())
    return Interval(mean, mean - half, mean + half, se, "t over splits",
                    f"the metric at split size (mean of {k} independent splits)", k)


@dataclass(frozen=True)
class PairedTest:
    """``difference = B - A`` with its interval and two-sided p-value for ``H0: E difference = 0``."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_clusters: int
    method: str


def mean_influence(values: np.ndarray) -> Influence:
    """A mean's value and its influence values ``x_i - mean`` (no reference side): with
    :func:`paired_delta_test` the cluster-robust paired z-test of a per-item metric."""
    x = np.asarray(values, dtype=np.float64)
    return Influence(float(x.mean()), x - x.mean(), None)


def paired_delta_test(a: Influence, b: Influence, alpha: float, clusters: Sequence[object] | None = None,
                      reference_clusters: Sequence[object] | None = None) -> PairedTest:
    """z-test of ``b.value - a.value`` for items paired by position and a shared reference.

    ``IF_{B-A} = IF_B - IF_A`` per generated item (summed per cluster) and per reference item.
    """
    diff = Influence(b.value - a.value, b.generated - a.generated,
                     None if a.reference is None or b.reference is None else b.reference - a.reference)
    interval = delta_interval(diff, alpha, clusters, reference_clusters=reference_clusters)
    p = _two_sided_normal(diff.value, interval.se)
    return PairedTest(diff.value, interval.low, interval.high, p, diff.generated.size,
                      interval.n_clusters, "paired delta method (z)")


def _two_sided_normal(value: float, se: float) -> float:
    if se == 0.0:
        return 1.0 if value == 0.0 else 0.0
    return float(2.0 * stats.norm.sf(abs(value) / se))


def paired_split_test(splits_a: np.ndarray, splits_b: np.ndarray, alpha: float) -> PairedTest:
    """Paired t-test over per-split differences ``B_k - A_k`` (the splits hold the same items)."""
    d = np.asarray(splits_b, np.float64) - np.asarray(splits_a, np.float64)
    if np.all(d == 0.0):
        mean = float(d.mean())
        return PairedTest(mean, mean, mean, 1.0, d.size, d.size, "paired t over splits")
    interval = split_t_interval(d, alpha)
    p = float(2.0 * stats.t.sf(abs(interval.value) / interval.se, d.size - 1))
    return PairedTest(interval.value, interval.low, interval.high, p, d.size, d.size,
                      "paired t over splits")


def adjust_p_values(p_values: Sequence[float], method: str = DEFAULT_CORRECTION) -> np.ndarray:
    """Family-wise adjusted p-values: Holm (step-down), Bonferroni, or none. NaN stays NaN.

    Holm: sort the m finite p-values ascending, ``p_(i) -> max_{j<=i} min(1, (m - j + 1) p_(j))``;
    rejecting where the adjusted p < alpha controls the family-wise error at alpha under any
    dependence (Holm 1979) and is never less powerful than Bonferroni (``min(1, m p)``).
    """
    if method not in CORRECTIONS:
        raise TrecsEvalError(f"unknown correction {method!r}; available: {', '.join(CORRECTIONS)}")
    p = np.asarray(p_values, dtype=np.float64)
    out = p.copy()
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if method == "none" or m == 0:
        return out
    if method == "bonferroni":
        out[finite] = np.minimum(1.0, m * p[finite])
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(1.0, stepped)
    return out


def containment_warning(name: str, value: float, low: float, high: float) -> tuple[str, ...]:
    """A warning when a finite interval does not contain its point estimate (never silent)."""
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(value)):
        return ()
    if low <= value <= high:
        return ()
    return (f"{name}: the interval [{low:.6g}, {high:.6g}] does not contain the estimate {value:.6g} "
            "(a skewed percentile bootstrap); read it as the spread of resampled values",)

"""FID_inf (Chong & Forsyth, CVPR 2020): FID extrapolated to infinitely many samples.

FID is biased upwards by roughly ``k / n`` (its plug-in ``tr sqrt(S_g S_r)`` is too small at
finite n), so FIDs of systems evaluated at different n cannot be compared. FID_inf fits

    FID(n_j) = FID_inf + k / n_j      (ordinary least squares in 1/n_j)

to FIDs of ``n_points`` random subsets, drawn without replacement at sizes ``n_j = f_j n`` for
``f_j`` evenly spaced in ``[min_fraction, 1]`` (Chong & Forsyth: 15 sizes from 5k to 50k, i.e.
``min_fraction = 0.1``), and reports the intercept. With reference *features* the reference set
is subsampled at the same fractions (``m_j = f_j m``), so its own ~1/m bias, proportional to
1/n_j along the path, is extrapolated away too; with saved reference statistics only the
generated side is (the result then says so). Unit: squared pool3 units; lower is better.

**Interval.** It covers the population FID (n, m -> infinity). The intercept is a weighted sum
of subset FIDs whose weights add up to 1, so its first-order sampling fluctuation is that of
the full-sample FID (each subset FID's linear part averages, over subset draws, to the full
sample's): ``se_sampling`` is the delta-method standard error of
:mod:`trecs_eval.metrics.intervals`, clustered by image on both sides. The scatter of the
subset FIDs around the line (subset draws, curvature) adds the OLS standard error of the
intercept, ``se_fit``.
``FID_inf ± z sqrt(se_sampling² + se_fit²)``: symmetric, so it contains the estimate. It
assumes the 1/n law holds over the fitted sizes; with n far below the feature dimension (2048)
it does not hold: ``benchmarks/bench_coverage.py`` measured FID_inf 390 above the population FID
(71.9) at d = 2048, n = 200, and 0.01 at d = 64, n = 1000. The result warns when its smallest
subset has fewer samples than the feature dimension.

Example: for two sets from the same Gaussian, FID(n) ~ c/n and FID_inf ~ 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics import intervals
from trecs_eval.metrics.fid import FidAgainstReference, GaussianStatistics, features_to_fid
from trecs_eval.metrics.types import MetricInfo

INFO = MetricInfo("fid_inf", higher_is_better=False, unit="squared pool3 units",
                  description="FID extrapolated to n -> infinity (Chong & Forsyth 2020), float64")
DEFAULT_POINTS = 15
DEFAULT_MIN_FRACTION = 0.2
MIN_SUBSET = 3


@dataclass(frozen=True)
class FidInfResult:
    """The intercept (FID_inf), its interval, the slope k and the fitted points."""

    value: float
    low: float
    high: float
    se: float
    se_sampling: float
    se_fit: float
    slope: float
    sizes: tuple[int, ...]
    fids: tuple[float, ...]
    reference_extrapolated: bool
    warnings: tuple[str, ...] = ()


def fit_inverse_n(sizes: np.ndarray, fids: np.ndarray) -> tuple[float, float, float]:
    """OLS of ``fids`` on ``[1, 1/sizes]``: ``(intercept, slope, se of intercept)``."""
    design = np.column_stack([np.ones(len(sizes)), 1.0 / np.asarray(sizes, np.float64)])
    coef, *_ = np.linalg.lstsq(design, fids, rcond=None)
    residuals = fids - design @ coef
    dof = len(sizes) - 2
    if dof < 1 or len(set(sizes.tolist())) < 2:
        raise TrecsEvalError(f"FID_inf needs at least 3 distinct subset sizes, got {sorted(set(sizes))}")
    sigma2 = float(residuals @ residuals) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    return float(coef[0]), float(coef[1]), math.sqrt(max(float(cov[0, 0]), 0.0))


def _fractions(n: int, n_points: int, min_fraction: float) -> np.ndarray:
    if n_points < 3:
        raise TrecsEvalError(f"FID_inf needs n_points >= 3, got {n_points}")
    if not 0.0 < min_fraction < 1.0:
        raise TrecsEvalError(f"FID_inf min_fraction must lie in (0, 1), got {min_fraction}")
    if min_fraction * n < MIN_SUBSET:
        raise TrecsEvalError(f"FID_inf with {n} samples: the smallest subset ({min_fraction:g} n) "
                             f"has fewer than {MIN_SUBSET} samples")
    return np.linspace(min_fraction, 1.0, n_points)


def features_to_fid_inf(features: np.ndarray, reference: np.ndarray | GaussianStatistics, *, seed: int,
                        alpha: float = 0.05, n_points: int = DEFAULT_POINTS,
                        min_fraction: float = DEFAULT_MIN_FRACTION,
                        images: intervals.ImageClusters = intervals.ITEMS_ARE_IMAGES) -> FidInfResult:
    """FID_inf of generated ``features`` (n, d) against reference features (m, d) or saved statistics;
    ``images`` (the image of each item on both sides) clusters the sampling error."""
    x = np.asarray(features, np.float64)
    n = len(x)
    fractions = _fractions(n, n_points, min_fraction)
    rng = np.random.default_rng(seed)
    fixed = isinstance(reference, GaussianStatistics)
    against = FidAgainstReference(reference) if fixed else None
    y = None if fixed else np.asarray(reference, np.float64)
    sizes, fids = [], []
    for f in fractions:
        size = max(MIN_SUBSET, round(f * n))
        gen = x[rng.choice(n, size, replace=False)] if size < n else x
        if against is not None:
            fids.append(against(gen))
        else:
            assert y is not None
            m_size = max(MIN_SUBSET, round(f * len(y)))
            ref = y[rng.choice(len(y), m_size, replace=False)] if m_size < len(y) else y
            fids.append(features_to_fid(gen, ref)[0])
        sizes.append(size)
    intercept, slope, se_fit = fit_inverse_n(np.array(sizes), np.array(fids))
    if isinstance(reference, GaussianStatistics):
        influence = intervals.fid_influence_fixed_reference(x, reference.mu, reference.sigma)
    else:
        influence = intervals.fid_influence(x, reference)
    se_sampling = math.sqrt(images.variance(influence))
    se = math.hypot(se_sampling, se_fit)
    half = intervals.z_quantile(alpha) * se
    warnings: tuple[str, ...] = ()
    if min(sizes) < x.shape[1]:
        warnings = (f"FID_inf fitted on subsets of {min(sizes)}..{n} samples in {x.shape[1]} dimensions: "
                    "below the dimension FID is not linear in 1/n and the extrapolation is biased "
                    "(docs/statistics.md); use at least as many samples as dimensions",)
    return FidInfResult(intercept, intercept - half, intercept + half, se, se_sampling, se_fit, slope,
                        tuple(sizes), tuple(float(v) for v in fids), not fixed, warnings)

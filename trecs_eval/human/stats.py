"""The statistics of a side-by-side study, as pure functions on arrays.

* :func:`two_way_mean`: a mean with a 95 % interval whose variance is two-way cluster-robust
  (Cameron, Gelbach & Miller 2011): ``V = V_item + V_rater - V_item∩rater``, each
  ``V_G = G/(G-1) · Σ_g (Σ_{i∈g} e_i)² / n²`` with ``e = y - ȳ``; a negative ``V`` (possible
  in small samples) falls back to ``max(V_item, V_rater)``; the interval uses Student's t with
  ``min(G_item, G_rater) - 1`` degrees of freedom.
* :func:`fit_davidson`: Bradley–Terry with Davidson's (1970) ties,
  ``P(i ≻ j) = π_i / D``, ``P(tie) = ν √(π_i π_j) / D``, ``D = π_i + π_j + ν √(π_i π_j)``,
  fitted by weighted maximum likelihood on ``θ = log π`` (centred to mean 0) and ``log ν``.
* :func:`krippendorff_alpha_nominal`: Krippendorff's α for nominal values from the coincidence
  matrix, ``α = 1 - (n-1) Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k``.
* :func:`wilson`: the Wilson score interval of a proportion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
RIDGE = 1e-6


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int
    n_items: int = 0
    n_raters: int = 0


def _cluster_sum_sq(e: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    codes, uniques = pd.factorize(groups)
    sums = np.bincount(codes, weights=e, minlength=len(uniques))
    g = len(uniques)
    return (g / (g - 1) if g > 1 else math.inf) * float(np.sum(sums**2)), g


def two_way_mean(y: Sequence[float], items: Sequence[Hashable], raters: Sequence[Hashable]) -> Estimate:
    """Mean of ``y`` with a two-way (item, rater) cluster-robust 95 % interval."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    items_a, raters_a = np.asarray(items, dtype=object), np.asarray(raters, dtype=object)
    mean = float(y.mean())
    e = y - mean
    s_item, g_item = _cluster_sum_sq(e, items_a)
    s_rater, g_rater = _cluster_sum_sq(e, raters_a)
    s_both, _ = _cluster_sum_sq(e, np.array([f"{i}\x00{r}" for i, r in zip(items_a, raters_a, strict=True)]))
    variance = (s_item + s_rater - s_both) / n**2
    if not variance > 0:
        variance = max(s_item, s_rater) / n**2
    df = min(g_item, g_rater) - 1
    if df < 1 or not math.isfinite(variance):
        return Estimate(mean, math.nan, math.nan, n, g_item, g_rater)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(variance)
    return Estimate(mean, mean - half, mean + half, n, g_item, g_rater)


def wilson(successes: float, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@dataclass(frozen=True)
class DavidsonFit:
    theta: np.ndarray  # log-strengths, mean 0
    log_nu: float


def _neg_log_lik(params: np.ndarray, k: int, i: np.ndarray, j: np.ndarray, wins: np.ndarray,
                 losses: np.ndarray, ties: np.ndarray) -> tuple[float, np.ndarray]:
    theta = np.concatenate([[0.0], params[: k - 1]])
    log_nu = params[-1]
    a, b = theta[i], theta[j]
    half = log_nu + (a + b) / 2
    log_d = np.logaddexp(np.logaddexp(a, b), half)
    ll = wins * (a - log_d) + losses * (b - log_d) + ties * (half - log_d)
    total = wins + losses + ties
    p_a, p_b, p_t = np.exp(a - log_d), np.exp(b - log_d), np.exp(half - log_d)
    # d ll / d a = wins + ties/2 - total (p_a + p_t/2); likewise for b; d ll / d log_nu = ties - total p_t
    grad_a = wins + ties / 2 - total * (p_a + p_t / 2)
    grad_b = losses + ties / 2 - total * (p_b + p_t / 2)
    grad_theta = np.bincount(i, grad_a, minlength=k) + np.bincount(j, grad_b, minlength=k)
    grad = np.concatenate([grad_theta[1:], [float(np.sum(ties - total * p_t))]])
    return -float(np.sum(ll)), -grad


def _penalised(params: np.ndarray, *args: object) -> tuple[float, np.ndarray]:
    # A tiny ridge keeps a system that never wins (or never ties) finite; it moves the MLE of a
    # well-posed fit by ~1e-6 relative, far below the tests' tolerances.
    value, grad = _neg_log_lik(params, *args)  # type: ignore[arg-type]
    return value + RIDGE * float(params @ params), grad + 2 * RIDGE * params


def fit_davidson(k: int, i: Sequence[int], j: Sequence[int], outcome: Sequence[float],
                 weights: Sequence[float] | None = None, start: DavidsonFit | None = None) -> DavidsonFit:
    """Fit ``k`` strengths to comparisons ``i`` vs ``j`` with ``outcome`` 1 (i wins), 0 (j wins)
    or 0.5 (tie), each with an optional weight (a bootstrap's resampling count); ``start`` (the
    full-data fit, for a bootstrap) only saves iterations."""
    i, j, y = np.asarray(i, int), np.asarray(j, int), np.asarray(outcome, float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    key = i * k + j
    counts = [np.bincount(key, w * mask, minlength=k * k) for mask in (y == 1, y == 0, y == 0.5)]
    used = np.flatnonzero(counts[0] + counts[1] + counts[2])
    args = (k, used // k, used % k, *(c[used] for c in counts))
    x0 = np.zeros(k) if start is None else np.append(start.theta[1:] - start.theta[0], start.log_nu)
    x = _newton(lambda p: _penalised(p, *args), x0)
    theta = np.concatenate([[0.0], x[: k - 1]])
    return DavidsonFit(theta - theta.mean(), float(x[-1]))


def _newton(f: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, tol: float = 1e-10,
            max_iter: int = 60) -> np.ndarray:
    """Damped Newton on a smooth convex objective; the Hessian by central differences of the
    analytic gradient (a handful of parameters: cheaper than a quasi-Newton's many iterations)."""
    value, grad = f(x)
    for _ in range(max_iter):
        if np.max(np.abs(grad)) < tol * max(1.0, abs(value)):
            break
        h = 1e-5
        hess = np.empty((len(x), len(x)))
        for c in range(len(x)):
            step = np.zeros(len(x))
            step[c] = h
            hess[:, c] = (f(x + step)[1] - f(x - step)[1]) / (2 * h)
        hess = (hess + hess.T) / 2
        try:
            direction = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            direction = -grad
        t = 1.0
        while t > 1e-12:
            new_value, new_grad = f(x + t * direction)
            if new_value <= value:
                break
            t /= 2
        else:
            break
        converged = value - new_value < tol * max(1.0, abs(value)) * 1e-3 and t == 1.0
        x, value, grad = x + t * direction, new_value, new_grad
        if converged:
            break
    return x


def krippendorff_alpha_nominal(units: Sequence[Hashable], values: Sequence[Hashable]) -> float:
    """α for nominal ``values``, one per (unit, coder) judgment; units with one value are pairable
    with nothing and drop out (as in Krippendorff's definition)."""
    frame = pd.DataFrame({"unit": list(units), "value": pd.factorize(pd.Series(list(values)))[0]})
    counts = pd.crosstab(frame["unit"], frame["value"]).to_numpy(dtype=float)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if len(m) == 0:
        return math.nan
    # o_ck = Σ_u (n_uc n_uk - [c=k] n_uc) / (m_u - 1)
    scaled = counts / (m - 1)[:, None]
    coincidence = scaled.T @ counts - np.diag(scaled.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    observed = coincidence.sum() - np.trace(coincidence)
    expected = n_c.sum() ** 2 - np.sum(n_c**2)
    if expected == 0:
        return math.nan
    return float(1.0 - (n - 1) * observed / expected)

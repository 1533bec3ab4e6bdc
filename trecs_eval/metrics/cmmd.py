"""CMMD (Jayasumana et al., CVPR 2024): MMD² between CLIP image embeddings, RBF kernel, ×1000.

Defined on L2-normalized CLIP ViT-L/14@336 image embeddings (open_clip ``ViT-L-14-336`` with
the ``openai`` weights; see :func:`trecs_eval.features.cmmd_clip.cmmd_embedder`). With
``k(x, y) = exp(-|x - y|² / (2 σ²))``, σ = 10, generated ``x_1..x_m`` and reference ``y_1..y_n``:

    CMMD = 1000 · [ (1/m²) Σ_ij k(x_i, x_j) + (1/n²) Σ_ij k(y_i, y_j) - (2/(m n)) Σ_ij k(x_i, y_j) ]

Unit: 1000 × squared RKHS distance; lower is better; 0 for identical sets.

**Which estimator.** The paper writes the *unbiased* MMD² estimator (sums over i != j, divided
by m(m-1) and n(n-1)). The reference code (google-research ``cmmd/distance.py``, function
``mmd``) computes the *biased* minimum-variance estimator of Gretton et al. 2012, Eq. (5): the
plain means of the three kernel matrices, diagonals included (as written above). We match the
reference code (``estimator="biased"``, the default, recorded in every result), so our numbers
are comparable with published CMMD values. The two differ by
``(1/m)(1 - mean_{i!=j} k(x_i, x_j)) + (1/n)(1 - mean_{i!=j} k(y_i, y_j))`` (×1000), which is
small for unit-norm embeddings (k >= exp(-4/200) = 0.98) but not zero; ``estimator="unbiased"``
gives the paper's formula. Other differences from the reference code: it computes in float32
(JAX), we in float64; its loader centre-crops then resizes (PIL bicubic) to 336 px, open_clip
resizes the short side then centre-crops (the same for square images).

Interval: percentile bootstrap over generated items, the reference set fixed
(:class:`CmmdAgainstReference`; 100 resamples as FID/KID). Each resample is the same estimator
on the resampled items; a duplicated item's pair with itself counts ``k = 1`` (biased
estimator) or is left out like any diagonal term (unbiased).

Interface::

    value = features_to_cmmd(gen_embeddings, ref_embeddings)                 # float, ×1000
    stat = CmmdAgainstReference(ref_embeddings).statistic(gen_embeddings)   # idx -> float
    result = cmmd_result(gen_embeddings, ref_embeddings, seed=0, n_resamples=100)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, bootstrap_statistic_ci
from trecs_eval.metrics.types import MetricInfo, MetricResult

INFO = MetricInfo("cmmd", higher_is_better=False, unit="1000 x squared RKHS distance",
                  description="CMMD: RBF-kernel MMD² (σ = 10) of CLIP ViT-L/14@336 embeddings, ×1000")
CMMD_SIGMA = 10.0  # the paper's and the reference code's bandwidth
CMMD_SCALE = 1000.0  # "to make the metric more human readable" (reference code)
ESTIMATORS = ("biased", "unbiased")
DEFAULT_ESTIMATOR = "biased"  # what google-research/cmmd computes (module doc)
DEFAULT_N_RESAMPLES = 100
CHUNK_ROWS = 2048  # kernel rows per block: 2048 x 30k float64 = 490 MB at most
NORM_TOLERANCE = 1e-3  # |1 - |x|| above this: the embeddings are not L2-normalized

Statistic = Callable[[np.ndarray], float]


def _as_embeddings(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise TrecsEvalError(f"CMMD needs an (n >= 2, d) {what} embedding matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise TrecsEvalError(f"{what} embeddings contain NaN or inf; CMMD is undefined")
    return a


def rbf_kernel_sums(x: np.ndarray, y: np.ndarray, sigma: float = CMMD_SIGMA,
                    chunk_rows: int = CHUNK_ROWS) -> tuple[float, float]:
    """``(Σ_ij k(x_i, y_j), Σ_i k(x_i, y_i) if x is y else 0)`` in blocks of rows, float64."""
    sq_y = np.einsum("ij,ij->i", y, y)
    total = 0.0
    for start in range(0, len(x), chunk_rows):
        block = x[start:start + chunk_rows]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + sq_y[None, :] - 2.0 * (block @ y.T)
        total += float(np.exp(-np.clip(sq, 0.0, None) / (2.0 * sigma**2)).sum())
    return total, float(len(x)) if x is y else 0.0  # k(x, x) = exp(0) = 1 on the diagonal


def _mean_within(x: np.ndarray, sigma: float, estimator: str) -> float:
    total, diagonal = rbf_kernel_sums(x, x, sigma)
    n = len(x)
    return total / n**2 if estimator == "biased" else (total - diagonal) / (n * (n - 1))


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise TrecsEvalError(f"unknown CMMD estimator {estimator!r}; available: {', '.join(ESTIMATORS)}")


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise TrecsEvalError(f"CMMD embeddings differ in dimension: {x.shape[1]} vs {y.shape[1]}")


def features_to_cmmd(generated: np.ndarray, reference: np.ndarray, *, sigma: float = CMMD_SIGMA,
                     scale: float = CMMD_SCALE, estimator: str = DEFAULT_ESTIMATOR) -> float:
    """CMMD of two (n, d) embedding sets (module doc); ×``scale``, ``estimator`` biased|unbiased."""
    _check_estimator(estimator)
    x, y = _as_embeddings(generated, "generated"), _as_embeddings(reference, "reference")
    _check_pair(x, y)
    cross, _ = rbf_kernel_sums(x, y, sigma)
    value = (_mean_within(x, sigma, estimator) + _mean_within(y, sigma, estimator)
             - 2.0 * cross / (len(x) * len(y)))
    return float(scale * value)


class CmmdAgainstReference:
    """CMMD of resamples of one generated set against a fixed reference set (bootstrap inner loop).

    The reference term is computed once; per generated set the m x m kernel and the mean kernel
    of each generated item against the reference are precomputed, so a resample with counts
    ``w`` costs one m x m product: ``Σ_ij w_i w_j K_ij`` (minus ``Σ_i w_i`` for the unbiased
    estimator, which drops every pair of a draw with itself).
    """

    def __init__(self, reference: np.ndarray, *, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE,
                 estimator: str = DEFAULT_ESTIMATOR) -> None:
        _check_estimator(estimator)
        self.reference = _as_embeddings(reference, "reference")
        self.sigma, self.scale, self.estimator = sigma, scale, estimator
        self.reference_term = _mean_within(self.reference, sigma, estimator)

    def _kernel(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        sq = np.einsum("ij,ij->i", x, x)[:, None] + np.einsum("ij,ij->i", y, y)[None, :] - 2.0 * (x @ y.T)
        return np.exp(-np.clip(sq, 0.0, None) / (2.0 * self.sigma**2))

    def statistic(self, generated: np.ndarray) -> Statistic:
        """``idx -> CMMD(generated[idx], reference)``; ``idx`` may repeat items."""
        x = _as_embeddings(generated, "generated")
        _check_pair(x, self.reference)
        k_xx = self._kernel(x, x)
        cross_mean = np.concatenate([self._kernel(x[s:s + CHUNK_ROWS], self.reference).mean(axis=1)
                                     for s in range(0, len(x), CHUNK_ROWS)])
        n_items = len(x)

        def statistic(idx: np.ndarray) -> float:
            w = np.bincount(idx, minlength=n_items).astype(np.float64)
            m = len(idx)
            within = w @ k_xx @ w
            within = within / m**2 if self.estimator == "biased" else (within - m) / (m * (m - 1))
            return float(self.scale * (within + self.reference_term - 2.0 * (w @ cross_mean) / m))

        return statistic


def embedding_warnings(generated: np.ndarray, reference: np.ndarray) -> list[str]:
    """Warn when rows are not unit-norm (CMMD is defined on L2-normalized CLIP embeddings)."""
    out = []
    for what, x in (("generated", generated), ("reference", reference)):
        norms = np.linalg.norm(np.asarray(x, np.float64), axis=1)
        if np.any(np.abs(norms - 1.0) > NORM_TOLERANCE):
            out.append(f"{what} embeddings are not L2-normalized (norms {norms.min():.3g}.."
                       f"{norms.max():.3g}); σ = 10 is calibrated for unit-norm CLIP embeddings")
    return out


def cmmd_result(generated: np.ndarray, reference: np.ndarray, *, seed: int = 0,
                n_resamples: int = DEFAULT_N_RESAMPLES, alpha: float = DEFAULT_ALPHA,
                estimator: str = DEFAULT_ESTIMATOR) -> MetricResult:
    """CMMD with its bootstrap interval (generated items resampled, reference fixed).

    ``n_resamples=0`` gives no interval. The caller stamps ``system``, ``extractor``, ``status``.
    """
    value = features_to_cmmd(generated, reference, estimator=estimator)
    low = high = math.nan
    if n_resamples > 0:
        stat = CmmdAgainstReference(reference, estimator=estimator).statistic(generated)
        low, high = bootstrap_statistic_ci(len(generated), stat, n_resamples, seed, alpha)
    return MetricResult(INFO.name, value, INFO.higher_is_better, len(generated), low, high, seed=seed,
                        warnings=tuple(embedding_warnings(generated, reference)),
                        params={"sigma": CMMD_SIGMA, "scale": CMMD_SCALE, "estimator": estimator,
                                "reference_n": len(reference), "n_resamples": n_resamples,
                                "alpha": alpha, "interval_over": "generated"})

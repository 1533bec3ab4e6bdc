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

Interval (as FID/KID, :mod:`trecs_eval.metrics.intervals`): the delta method on the empirical
influence values of the estimator, ``value ± z sqrt(Var)``, both sets' sampling variability
included, items clustered by image on each side when given. For the biased estimator

    IF_g(x_i) = 2 (mean_j k(x_i, x_j) - mean_l k(x_i, y_l)),   IF_r(y_l) likewise (centred),

(the unbiased one leaves ``j = i`` out). It covers "CMMD at this (n, m)": the expectation of the
estimator at these sample sizes (the biased estimator's expectation exceeds the population MMD²
by O(1/n + 1/m)). Not the percentile bootstrap: a resample's duplicated items each add
``k(x, x) = 1`` pairs to the biased estimator and pull every replicate upwards.

Interface::

    value = features_to_cmmd(gen_embeddings, ref_embeddings)          # float, ×1000
    influence = cmmd_influence(gen_embeddings, ref_embeddings)       # intervals.Influence, ×1000
    result = cmmd_result(gen_embeddings, ref_embeddings, alpha=0.05, clusters=image_ids)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.intervals import Influence, delta_interval
from trecs_eval.metrics.types import MetricInfo, MetricResult

INFO = MetricInfo("cmmd", higher_is_better=False, unit="1000 x squared RKHS distance",
                  description="CMMD: RBF-kernel MMD² (σ = 10) of CLIP ViT-L/14@336 embeddings, ×1000")
CMMD_SIGMA = 10.0  # the paper's and the reference code's bandwidth
CMMD_SCALE = 1000.0  # "to make the metric more human readable" (reference code)
ESTIMATORS = ("biased", "unbiased")
DEFAULT_ESTIMATOR = "biased"  # what google-research/cmmd computes (module doc)
DEFAULT_ALPHA = 0.05
CHUNK_ROWS = 2048  # kernel rows per block: 2048 x 30k float64 = 490 MB at most
NORM_TOLERANCE = 1e-3  # |1 - |x|| above this: the embeddings are not L2-normalized


def _as_embeddings(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise TrecsEvalError(f"CMMD needs an (n >= 2, d) {what} embedding matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise TrecsEvalError(f"{what} embeddings contain NaN or inf; CMMD is undefined")
    return a


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise TrecsEvalError(f"unknown CMMD estimator {estimator!r}; available: {', '.join(ESTIMATORS)}")


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise TrecsEvalError(f"CMMD embeddings differ in dimension: {x.shape[1]} vs {y.shape[1]}")


def _kernel_row_sums(x: np.ndarray, y: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column sums of the RBF kernel matrix of ``x`` and ``y``, in row blocks."""
    sq_y = np.einsum("ij,ij->i", y, y)
    rows, cols = np.empty(len(x)), np.zeros(len(y))
    for start in range(0, len(x), CHUNK_ROWS):
        block = x[start:start + CHUNK_ROWS]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + sq_y[None, :] - 2.0 * (block @ y.T)
        kernel = np.exp(-np.clip(sq, 0.0, None) / (2.0 * sigma**2))
        rows[start:start + len(block)] = kernel.sum(axis=1)
        cols += kernel.sum(axis=0)
    return rows, cols


def cmmd_influence(generated: np.ndarray, reference: np.ndarray, *, sigma: float = CMMD_SIGMA,
                   scale: float = CMMD_SCALE, estimator: str = DEFAULT_ESTIMATOR) -> Influence:
    """CMMD and its centred empirical influence values per generated and reference item (×scale)."""
    _check_estimator(estimator)
    x, y = _as_embeddings(generated, "generated"), _as_embeddings(reference, "reference")
    _check_pair(x, y)
    n, m = len(x), len(y)
    if estimator == "unbiased" and min(n, m) < 3:
        raise TrecsEvalError(f"a CMMD interval needs at least 3 items per side, got {n} and {m}")
    row_xx, row_yy = _kernel_row_sums(x, x, sigma)[0], _kernel_row_sums(y, y, sigma)[0]
    row_xy, col_xy = _kernel_row_sums(x, y, sigma)
    if estimator == "biased":
        within_x, within_y = row_xx / n, row_yy / m
    else:  # leave each item's pair with itself (k = 1) out
        within_x, within_y = (row_xx - 1.0) / (n - 1), (row_yy - 1.0) / (m - 1)
    value = within_x.mean() + within_y.mean() - 2.0 * row_xy.sum() / (n * m)
    gen = 2.0 * (within_x - row_xy / m)
    ref = 2.0 * (within_y - col_xy / n)
    return Influence(float(scale * value), scale * (gen - gen.mean()), scale * (ref - ref.mean()))


def features_to_cmmd(generated: np.ndarray, reference: np.ndarray, *, sigma: float = CMMD_SIGMA,
                     scale: float = CMMD_SCALE, estimator: str = DEFAULT_ESTIMATOR) -> float:
    """CMMD of two (n, d) embedding sets (module doc); ×``scale``, ``estimator`` biased|unbiased."""
    return cmmd_influence(generated, reference, sigma=sigma, scale=scale, estimator=estimator).value


def embedding_warnings(generated: np.ndarray, reference: np.ndarray) -> list[str]:
    """Warn when rows are not unit-norm (CMMD is defined on L2-normalized CLIP embeddings)."""
    out = []
    for what, x in (("generated", generated), ("reference", reference)):
        norms = np.linalg.norm(np.asarray(x, np.float64), axis=1)
        if np.any(np.abs(norms - 1.0) > NORM_TOLERANCE):
            out.append(f"{what} embeddings are not L2-normalized (norms {norms.min():.3g}.."
                       f"{norms.max():.3g}); σ = 10 is calibrated for unit-norm CLIP embeddings")
    return out


def cmmd_result(generated: np.ndarray, reference: np.ndarray, *, alpha: float = DEFAULT_ALPHA,
                estimator: str = DEFAULT_ESTIMATOR, clusters: Sequence[object] | None = None,
                interval: bool = True, reference_clusters: Sequence[object] | None = None) -> MetricResult:
    """CMMD with its delta-method interval (module doc); ``clusters`` / ``reference_clusters``:
    image id per generated / reference item (the interval's sampling unit on each side).

    ``interval=False`` gives no interval. The caller stamps ``system``, ``extractor``, ``status``.
    """
    influence = cmmd_influence(generated, reference, estimator=estimator)
    low = high = se = math.nan
    if interval:
        found = delta_interval(influence, alpha, clusters,
                               covers="CMMD at this (n, m): the estimator's expectation at these sizes",
                               reference_clusters=reference_clusters)
        low, high, se = found.low, found.high, found.se
    return MetricResult(INFO.name, influence.value, INFO.higher_is_better, len(generated), low, high,
                        warnings=tuple(embedding_warnings(generated, reference)),
                        params={"sigma": CMMD_SIGMA, "scale": CMMD_SCALE, "estimator": estimator,
                                "reference_n": len(reference), "alpha": alpha, "interval": "delta",
                                "se": se})

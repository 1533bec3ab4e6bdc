"""Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020).

Real features ``r_1..r_N``, generated features ``f_1..f_M`` (any feature space, Euclidean
distance ``d``), ``k`` nearest neighbours (default 5). ``NND_k(x)`` is the distance from a point
to its k-th nearest neighbour *in its own set*: the (k+1)-th smallest of ``d(x, x_j)`` over the
set including ``x`` itself, so an exact duplicate counts as a neighbour at distance 0 (the
definition of the ``prdc`` package). ``B(x, r)`` is the open ball ``{y : d(x, y) < r}``.

    precision = (1/M) Σ_j 1[∃ i: f_j ∈ B(r_i, NND_k(r_i))]
    recall    = (1/N) Σ_i 1[∃ j: r_i ∈ B(f_j, NND_k(f_j))]
    density   = (1/(k M)) Σ_j Σ_i 1[f_j ∈ B(r_i, NND_k(r_i))]
    coverage  = (1/N) Σ_i 1[min_j d(r_i, f_j) < NND_k(r_i)]

All four are fractions (density can exceed 1), higher is better. Example: a generated set
equal to the real set gives precision = recall = coverage = 1 and density = 1.

Computation: squared distances ``|a|² + |b|² - 2 a·b`` in float64 on features centred at the
real mean (translation changes no distance and keeps the cancellation small), clipped at 0, in
blocks of ``chunk_rows`` rows, so 10k x 10k never holds more than ``chunk_rows x 10k`` floats.
Rows that are bit-identical get distance exactly 0 (found by hashing rows, not by round-off).
Precision, density and coverage follow from the sparse list of pairs ``(i, j)`` with ``f_j``
inside real ball ``i`` (``density * k * M`` pairs).

Intervals (:func:`prdc_intervals`; 95 % percentile bootstrap of a mean, from
:mod:`~trecs_eval.metrics.bootstrap`). Each value is the mean of a per-item quantity with
everything else held at its full-sample value, and the interval resamples those items:

* precision, density: per *generated* item (in some real ball: 0/1; balls holding it / k), with
  the real items and radii fixed;
* recall: per *real* item (inside some generated ball), with the generated items and radii fixed;
* coverage: per *real* item (its ball holds a generated item), generated items and radii fixed.

So each interval covers the sampling variability of the items averaged over, conditional on the
other set; it does not cover the variability of the k-NN radii. Why not recompute the metric on
bootstrap resamples: a resample holds only ~63 % distinct items and its copies sit at distance 0,
which shrinks k-NN radii (recall) or drops items (coverage fell from 0.98 to a [0.92, 0.94]
"interval" in a trial): such intervals miss their own point estimate. ``params["interval_over"]``
names the resampled side in every result.

Interface::

    values = features_to_prdc(real, fake, nearest_k=5)          # PrdcValues
    parts = prdc_parts(real, fake, nearest_k=5)                 # per-item pieces
    results = prdc_results(real, fake, nearest_k=5, seed=0, n_resamples=100)  # 4 MetricResults
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, bootstrap_mean_ci
from trecs_eval.metrics.intervals import containment_warning
from trecs_eval.metrics.types import MetricInfo, MetricResult

DEFAULT_NEAREST_K = 5
DEFAULT_CHUNK_ROWS = 1024  # 1024 x 10k float64 = 80 MB per distance block
DEFAULT_N_RESAMPLES = 1000  # means of per-item values: as the per-item metrics (docs/statistics.md)
METRIC_NAMES = ("precision", "recall", "density", "coverage")
INFOS: dict[str, MetricInfo] = {
    "precision": MetricInfo("precision", True, "fraction",
                            "share of generated items inside some real k-NN ball (Kynkäänniemi 2019)"),
    "recall": MetricInfo("recall", True, "fraction",
                         "share of real items inside some generated k-NN ball (Kynkäänniemi 2019)"),
    "density": MetricInfo("density", True, "ratio",
                          "mean number of real k-NN balls holding a generated item, / k (Naeem 2020)"),
    "coverage": MetricInfo("coverage", True, "fraction",
                           "share of real k-NN balls holding a generated item (Naeem 2020)"),
}
INTERVAL_OVER = {"precision": "generated", "density": "generated", "coverage": "real",
                 "recall": "real"}


@dataclass(frozen=True)
class PrdcValues:
    """The four values and what they were computed from."""

    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int
    n_real: int
    n_fake: int

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in METRIC_NAMES}


@dataclass(frozen=True)
class PrdcParts:
    """Per-item pieces of PRDC (everything the values and their intervals need).

    ``pair_real``/``pair_fake``: int64 indices of the pairs with ``f_j`` in real ball ``i``;
    ``real_radii`` (N,), ``fake_radii`` (M,): k-NN radii; ``recall_hits`` (N,) bool.
    """

    nearest_k: int
    real_radii: np.ndarray
    fake_radii: np.ndarray
    pair_real: np.ndarray
    pair_fake: np.ndarray
    recall_hits: np.ndarray

    @property
    def n_real(self) -> int:
        return len(self.real_radii)

    @property
    def n_fake(self) -> int:
        return len(self.fake_radii)

    def balls_per_fake(self) -> np.ndarray:
        """(M,) number of real balls holding each generated item (density numerator per item)."""
        return np.bincount(self.pair_fake, minlength=self.n_fake)

    def covered(self) -> np.ndarray:
        """(N,) bool: real ball ``i`` holds at least one generated item (coverage per real item)."""
        hit = np.zeros(self.n_real, dtype=bool)
        hit[self.pair_real] = True
        return hit

    def per_item(self) -> dict[str, np.ndarray]:
        """Per-item values whose means are the four metrics (generated items for precision and
        density, real items for recall and coverage)."""
        balls = self.balls_per_fake().astype(np.float64)
        return {"precision": (balls > 0).astype(np.float64), "recall": self.recall_hits.astype(np.float64),
                "density": balls / self.nearest_k, "coverage": self.covered().astype(np.float64)}

    def values(self) -> PrdcValues:
        means = {name: float(v.mean()) for name, v in self.per_item().items()}
        return PrdcValues(**means, nearest_k=self.nearest_k, n_real=self.n_real, n_fake=self.n_fake)


def _as_features(features: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise TrecsEvalError(f"PRDC needs an (n, d) {what} feature matrix, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise TrecsEvalError(f"{what} features contain NaN or inf; PRDC is undefined")
    return x


def _row_ids(*sets: np.ndarray) -> list[np.ndarray]:
    """Integer id per row, equal exactly when the rows are bit-identical (across all sets)."""
    stacked = np.concatenate(sets)
    _, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    bounds = np.cumsum([0] + [len(s) for s in sets])
    return [inverse[bounds[i]:bounds[i + 1]] for i in range(len(sets))]


def _distance_blocks(a: np.ndarray, b: np.ndarray, ids_a: np.ndarray, ids_b: np.ndarray,
                     chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, D)`` with ``D[r, j] = d(a[start + r], b[j])``; identical rows give exactly 0."""
    sq_b = np.einsum("ij,ij->i", b, b)
    for start in range(0, len(a), chunk_rows):
        block = a[start:start + chunk_rows]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + sq_b[None, :] - 2.0 * (block @ b.T)
        np.clip(sq, 0.0, None, out=sq)
        sq[ids_a[start:start + chunk_rows, None] == ids_b[None, :]] = 0.0
        yield start, np.sqrt(sq, out=sq)


def knn_radii(x: np.ndarray, nearest_k: int, ids: np.ndarray, chunk_rows: int = DEFAULT_CHUNK_ROWS
              ) -> np.ndarray:
    """(n,) distance of each row to its k-th nearest neighbour in ``x`` (itself counted at 0)."""
    radii = np.empty(len(x))
    for start, block in _distance_blocks(x, x, ids, ids, chunk_rows):
        radii[start:start + len(block)] = np.partition(block, nearest_k, axis=1)[:, nearest_k]
    return radii


def _check_sizes(n_real: int, n_fake: int, nearest_k: int) -> None:
    if nearest_k < 1:
        raise TrecsEvalError(f"PRDC needs nearest_k >= 1, got {nearest_k}")
    if min(n_real, n_fake) <= nearest_k:
        raise TrecsEvalError(f"PRDC with k = {nearest_k} needs more than {nearest_k} items per side, "
                             f"got {n_real} real and {n_fake} generated")


def prdc_parts(real: np.ndarray, fake: np.ndarray, nearest_k: int = DEFAULT_NEAREST_K,
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> PrdcParts:
    """Radii, in-ball pairs and recall hits of two (n, d) feature sets (see the module doc)."""
    r, f = _as_features(real, "real"), _as_features(fake, "generated")
    if r.shape[1] != f.shape[1]:
        raise TrecsEvalError(f"PRDC feature sets differ in dimension: {r.shape[1]} vs {f.shape[1]}")
    _check_sizes(len(r), len(f), nearest_k)
    centre = r.mean(axis=0)
    r, f = r - centre, f - centre
    ids_r, ids_f = _row_ids(r, f)
    real_radii = knn_radii(r, nearest_k, ids_r, chunk_rows)
    fake_radii = knn_radii(f, nearest_k, ids_f, chunk_rows)
    pairs_r, pairs_f, recall_hits = [], [], np.zeros(len(r), dtype=bool)
    for start, block in _distance_blocks(r, f, ids_r, ids_f, chunk_rows):
        rows, cols = np.nonzero(block < real_radii[start:start + len(block), None])
        pairs_r.append(rows + start)
        pairs_f.append(cols)
        recall_hits[start:start + len(block)] = (block < fake_radii[None, :]).any(axis=1)
    return PrdcParts(nearest_k, real_radii, fake_radii, np.concatenate(pairs_r).astype(np.int64),
                     np.concatenate(pairs_f).astype(np.int64), recall_hits)


def features_to_prdc(real: np.ndarray, fake: np.ndarray, nearest_k: int = DEFAULT_NEAREST_K,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS) -> PrdcValues:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (module doc formulas)."""
    return prdc_parts(real, fake, nearest_k, chunk_rows).values()


def prdc_intervals(parts: PrdcParts, n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = 0,
                   alpha: float = DEFAULT_ALPHA, fake_clusters: Sequence[object] | None = None,
                   real_clusters: Sequence[object] | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of the four means; the side each resamples: ``INTERVAL_OVER``.

    ``fake_clusters`` / ``real_clusters`` (an image id per item) resample whole images when an
    image has several narratives (:func:`~trecs_eval.metrics.bootstrap.bootstrap_mean_ci`).
    """
    out = {}
    for name, values in parts.per_item().items():
        clusters = fake_clusters if INTERVAL_OVER[name] == "generated" else real_clusters
        _, low, high = bootstrap_mean_ci(values, n_resamples, seed, alpha, clusters=clusters)
        out[name] = (low, high)
    return out


def _per_sample(ids: list[str] | None, values: np.ndarray, side: str) -> dict[str, float]:
    if ids is None:
        return {}
    if len(ids) != len(values):
        raise TrecsEvalError(f"{len(ids)} {side} ids for {len(values)} {side} feature rows")
    return {i: float(v) for i, v in zip(ids, values, strict=True)}


def prdc_results(real: np.ndarray, fake: np.ndarray, *, nearest_k: int = DEFAULT_NEAREST_K,
                 seed: int = 0, n_resamples: int = DEFAULT_N_RESAMPLES, alpha: float = DEFAULT_ALPHA,
                 fake_ids: list[str] | None = None, real_ids: list[str] | None = None,
                 fake_clusters: Sequence[object] | None = None, real_clusters: Sequence[object] | None = None,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS) -> list[MetricResult]:
    """The four MetricResults (order of ``METRIC_NAMES``); ``n_resamples=0`` gives no interval.

    ``fake_clusters``/``real_clusters``: image id per item, for the clustered bootstrap.
    ``per_sample`` holds the per-item values of :meth:`PrdcParts.per_item`, keyed by
    ``fake_ids`` (precision, density) or ``real_ids`` (recall, coverage) when given. ``n`` is
    the number of generated items. The caller stamps ``system``, ``extractor`` and ``status``
    (``dataclasses.replace``).
    """
    parts = prdc_parts(real, fake, nearest_k, chunk_rows)
    per_item = parts.per_item()
    intervals = (prdc_intervals(parts, n_resamples, seed, alpha, fake_clusters, real_clusters)
                 if n_resamples > 0 else {})
    results = []
    for name in METRIC_NAMES:
        side = INTERVAL_OVER[name]
        ids = fake_ids if side == "generated" else real_ids
        low, high = intervals.get(name, (math.nan, math.nan))
        value = float(per_item[name].mean())
        results.append(MetricResult(
            name, value, INFOS[name].higher_is_better, parts.n_fake, low, high, seed=seed,
            warnings=containment_warning(name, value, low, high),
            per_sample=_per_sample(ids, per_item[name], side),
            params={"nearest_k": nearest_k, "n_real": parts.n_real, "n_resamples": n_resamples,
                    "alpha": alpha, "interval_over": side}))
    return results

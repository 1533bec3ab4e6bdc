"""CLIP R-precision: can CLIP pick an image's own narrative out of a line-up?

For image ``i`` (embedding ``v_i``) the candidates are its true narrative ``t_i`` plus
``n_negatives`` (default 99) narratives drawn without replacement, with a seed, from the
narratives of OTHER images (``image_id != image_id_i``: another annotator's narrative of the
same picture is never a negative). The rank of the true narrative is::

    rank_i = 1 + #{negatives j : cos(v_i, t_j) >= cos(v_i, t_i)}

Ties count against the true narrative (pessimistic), so an extractor that maps everything to
one vector scores 0, not 1. R@1 is the mean of ``hit_i = [rank_i == 1]`` (a fraction in 0..1),
with a seeded 95 % percentile bootstrap CI that resamples images (``image_ids``: the narratives
of one image are not independent; ``params['n_clusters']``); ``per_sample`` holds ``hit_i`` and
:class:`RPrecisionResult` also returns every ``rank_i``.

Too few other-image narratives for ``n_negatives`` is an error, unless
``allow_fewer_negatives=True``: then every image gets the same smaller number (the smallest
available), stated in a warning and in ``params['n_negatives']``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trecs_eval.errors import InputError, TrecsEvalError
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, DEFAULT_N_RESAMPLES, bootstrap_mean_ci
from trecs_eval.metrics.clip_score import _as_rows
from trecs_eval.metrics.intervals import cluster_codes, containment_warning
from trecs_eval.metrics.types import MetricInfo, MetricResult

DEFAULT_N_NEGATIVES = 99
RANK_BLOCK_ROWS = 256
R_PRECISION_INFO = MetricInfo(
    "r_precision", higher_is_better=True, unit="fraction",
    description="CLIP R@1: share of images whose narrative ranks first among it and 99 others",
)


@dataclass(frozen=True)
class RPrecisionResult:
    """The metric plus every rank (1 = the true narrative ranked first), keyed by item id."""

    metric: MetricResult
    ranks: dict[str, int]


def available_negatives(image_ids: Sequence[str]) -> np.ndarray:
    """(N,) int: for each item, how many narratives belong to a different image."""
    _, inverse, counts = np.unique(np.asarray(image_ids, dtype=str), return_inverse=True, return_counts=True)
    return len(image_ids) - counts[inverse]


def sample_negatives(image_ids: Sequence[str], n_negatives: int, seed: int) -> np.ndarray:
    """(N, n_negatives) int row indices of negatives; row i never shares ``image_ids[i]``.

    Drawn without replacement per row by ``numpy.random.default_rng(seed)``, rows in order.
    """
    _, codes = np.unique(np.asarray(image_ids, dtype=str), return_inverse=True)
    room = available_negatives(image_ids)
    if n_negatives < 1 or np.any(room < n_negatives):
        raise TrecsEvalError(
            f"R-precision needs {n_negatives} negatives per image, but some images have only "
            f"{int(room.min()) if room.size else 0} narratives of other images "
            f"({codes.size} narratives in all)",
            hint="evaluate more images, or allow fewer negatives (stated in the result)",
        )
    rng = np.random.default_rng(seed)
    everything = np.arange(codes.size)
    negatives = np.empty((codes.size, n_negatives), dtype=np.int64)
    for i in range(codes.size):
        others = everything[codes != codes[i]]
        negatives[i] = others[rng.choice(others.size, size=n_negatives, replace=False)]
    return negatives


def retrieval_ranks(
    image_embeddings: np.ndarray, text_embeddings: np.ndarray, negatives: np.ndarray
) -> np.ndarray:
    """(N,) int ranks (1-based, ties pessimistic) of text i for image i among text i and its negatives."""
    v = _as_rows(image_embeddings, "image_embeddings")
    t = _as_rows(text_embeddings, "text_embeddings")
    if v.shape != t.shape or negatives.shape[0] != v.shape[0]:
        raise InputError(
            f"embeddings and negatives must align: {v.shape}, {t.shape}, {negatives.shape}",
            field="embeddings",
        )
    ranks = np.empty(v.shape[0], dtype=np.int64)
    for start in range(0, v.shape[0], RANK_BLOCK_ROWS):  # bounded memory: (block, N) scores at a time
        rows = slice(start, start + RANK_BLOCK_ROWS)
        scores = v[rows] @ t.T
        true_score = np.einsum("nd,nd->n", v[rows], t[rows])
        negative_scores = np.take_along_axis(scores, negatives[rows], axis=1)
        ranks[rows] = 1 + np.count_nonzero(negative_scores >= true_score[:, None], axis=1)
    return ranks


def compute_r_precision(
    item_ids: Sequence[str],
    image_ids: Sequence[str],
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    n_negatives: int = DEFAULT_N_NEGATIVES,
    seed: int = 0,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    alpha: float = DEFAULT_ALPHA,
    allow_fewer_negatives: bool = False,
    extractor: dict[str, Any] | None = None,
    system: str = "",
    text_info: dict[str, Any] | None = None,
) -> RPrecisionResult:
    """R@1 over items (row i: item ``item_ids[i]`` of image ``image_ids[i]``); see the module doc."""
    ids = [str(i) for i in item_ids]
    if len(ids) != len(image_ids) or len(set(ids)) != len(ids):
        raise InputError("item ids must be unique and align with image ids", field="item_ids")
    warnings: list[str] = []
    room = int(available_negatives(image_ids).min()) if ids else 0
    if allow_fewer_negatives and 1 <= room < n_negatives:
        warnings.append(
            f"only {room} negatives per image (asked {n_negatives}): R@1 is easier than the standard 1-in-100"
        )
        n_negatives = room
    negatives = sample_negatives(image_ids, n_negatives, seed)
    ranks = retrieval_ranks(image_embeddings, text_embeddings, negatives)
    hits = (ranks == 1).astype(np.float64)
    mean, low, high = bootstrap_mean_ci(hits, n_resamples=n_resamples, seed=seed, alpha=alpha,
                                        clusters=list(image_ids))
    warnings += containment_warning("r_precision", mean, low, high)
    extractor = dict(extractor or {})
    metric = MetricResult(
        name="r_precision",
        value=mean,
        higher_is_better=True,
        n=hits.size,
        ci_low=low,
        ci_high=high,
        system=system,
        extractor=extractor,
        seed=seed,
        status="uncalibrated" if extractor.get("uncalibrated") else "ok",
        warnings=tuple(warnings),
        params={"n_negatives": n_negatives, "n_resamples": n_resamples, "alpha": alpha,
                "n_clusters": cluster_codes(list(image_ids), hits.size)[1],
                "mean_rank": float(ranks.mean()), **dict(text_info or {})},
        per_sample=dict(zip(ids, hits.tolist(), strict=True)),
    )
    return RPrecisionResult(metric=metric, ranks=dict(zip(ids, ranks.tolist(), strict=True)))

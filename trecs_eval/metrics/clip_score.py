"""CLIPScore: how well each generated image matches its narrative, by CLIP cosine similarity.

Per sample ``i`` with L2-normalized image embedding ``v_i`` and narrative embedding ``t_i``::

    s_i = w * max(cos(v_i, t_i), 0)

Two named scales, no ambiguity:

* ``clip_score``: ``w = 100`` (the torchmetrics ``CLIPScore`` scale; range 0..100);
* ``clip_s``: ``w = 2.5`` (Hessel et al. 2021, "CLIPScore"; range 0..2.5).

The value is the mean of ``s_i`` with a seeded 95 % percentile bootstrap CI over samples, or
over images (``clusters``) when an image has several narratives (they are not independent);
``per_sample`` maps item ids to ``s_i``. Cosines are computed in float64 after renormalizing.

>>> v = np.array([[1.0, 0.0], [0.0, 1.0]]); t = np.array([[1.0, 0.0], [1.0, 1.0]])
>>> np.round(clip_scores(v, t, 100.0), 3).tolist()
[100.0, 70.711]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trecs_eval.errors import InputError, TrecsEvalError, suggest
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, DEFAULT_N_RESAMPLES, bootstrap_mean_ci
from trecs_eval.metrics.intervals import cluster_codes, containment_warning
from trecs_eval.metrics.types import MetricInfo, MetricResult

CLIP_SCORE_SCALES: dict[str, float] = {"clip_score": 100.0, "clip_s": 2.5}
CLIP_SCORE_INFO = MetricInfo(
    "clip_score", higher_is_better=True, unit="100*max(cos,0)",
    description="CLIPScore, torchmetrics scale: 100 * max(cos(image, narrative), 0), mean over samples",
)
CLIP_S_INFO = MetricInfo(
    "clip_s", higher_is_better=True, unit="2.5*max(cos,0)",
    description="CLIP-S (Hessel et al. 2021): 2.5 * max(cos(image, narrative), 0), mean over samples",
)


def _as_rows(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise InputError(f"{what} must be a non-empty (N, D) array, got shape {a.shape}", field=what)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what} has non-finite values", field=what)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError(f"{what} has an all-zero embedding (no direction)", field=what)
    return a / norms


def pairwise_cosines(image_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
    """(N,) float64 ``cos(v_i, t_i)`` of aligned rows (renormalized in float64)."""
    v = _as_rows(image_embeddings, "image_embeddings")
    t = _as_rows(text_embeddings, "text_embeddings")
    if v.shape != t.shape:
        raise InputError(f"image and text embeddings must align: {v.shape} vs {t.shape}", field="embeddings")
    return np.einsum("nd,nd->n", v, t)


def clip_scores(image_embeddings: np.ndarray, text_embeddings: np.ndarray, weight: float) -> np.ndarray:
    """(N,) float64 ``weight * max(cos(v_i, t_i), 0)``."""
    return weight * np.maximum(pairwise_cosines(image_embeddings, text_embeddings), 0.0)


def compute_clip_score(
    item_ids: Sequence[str],
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    name: str = "clip_score",
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    extractor: dict[str, Any] | None = None,
    system: str = "",
    text_info: dict[str, Any] | None = None,
    clusters: Sequence[str] | None = None,
) -> MetricResult:
    """CLIPScore (``name='clip_score'``, w=100) or CLIP-S (``name='clip_s'``, w=2.5) as a MetricResult.

    ``extractor`` is ``ClipEmbedder.identity.to_dict()`` (an ``uncalibrated`` one stamps the
    result); ``clusters[i]`` is item i's image (resampled as a whole);
    ``text_info`` carries what the text policy did (``policy``, ``truncated_fraction``,
    ``over_length_fraction``, ``mean_chunks``) into ``params``; truncation adds a warning.
    """
    if name not in CLIP_SCORE_SCALES:
        raise TrecsEvalError(f"unknown CLIPScore scale {name!r}{suggest(name, CLIP_SCORE_SCALES)}")
    ids = [str(i) for i in item_ids]
    if len(set(ids)) != len(ids):
        raise InputError("item ids must be unique for per-sample CLIPScore", field="item_ids")
    scores = clip_scores(image_embeddings, text_embeddings, CLIP_SCORE_SCALES[name])
    if len(ids) != scores.size:
        raise InputError(f"{len(ids)} item ids for {scores.size} embedding pairs", field="item_ids")
    mean, low, high = bootstrap_mean_ci(scores, n_resamples=n_resamples, seed=seed, alpha=alpha,
                                        clusters=clusters)
    info = dict(text_info or {})
    warnings = list(containment_warning(name, mean, low, high))
    if info.get("truncated_fraction", 0.0) > 0.0:
        warnings.append(
            f"{100 * info['truncated_fraction']:.1f}% of narratives were cut to CLIP's 77-token context "
            f"(text policy {info.get('policy', '?')!r}); their last words do not count"
        )
    extractor = dict(extractor or {})
    return MetricResult(
        name=name,
        value=mean,
        higher_is_better=True,
        n=scores.size,
        ci_low=low,
        ci_high=high,
        std=float(scores.std(ddof=1)) if scores.size > 1 else float("nan"),
        system=system,
        extractor=extractor,
        seed=seed,
        status="uncalibrated" if extractor.get("uncalibrated") else "ok",
        warnings=tuple(warnings),
        params={"weight": CLIP_SCORE_SCALES[name], "n_resamples": n_resamples, "alpha": alpha,
                "n_clusters": cluster_codes(clusters, scores.size)[1], **info},
        per_sample=dict(zip(ids, scores.tolist(), strict=True)),
    )

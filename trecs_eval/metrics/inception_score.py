"""Inception Score (Salimans et al. 2016) from Inception ``logits_unbiased``.

    IS = exp( E_x KL(p(y|x) || p(y)) ),  p(y|x) = softmax(logits(x)),  p(y) = mean_x p(y|x)

computed on each of ``splits`` (10) consecutive chunks of the samples after a seeded shuffle,
reported as mean ± (population) std over chunks; unitless, in [1, n_classes], higher is better.
The shuffle and the chunk bounds are torch-fidelity's: ``np.random.RandomState(seed)
.permutation(N)``, chunk i = rows ``[i*N//splits, (i+1)*N//splits)``; all in float64.
Example: identical images give IS = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax, logsumexp

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.types import MetricInfo

INFO = MetricInfo("is", higher_is_better=True, unit="",
                  description="Inception Score over 10 splits (logits_unbiased, float64)")
DEFAULT_SPLITS = 10


@dataclass(frozen=True)
class InceptionScoreResult:
    """Mean and std of IS over splits, with the per-split scores."""

    mean: float
    std: float
    split_scores: np.ndarray


def split_score(log_p: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) for one chunk of per-sample log-probabilities."""
    p = np.exp(log_p)
    # log p(y) in the log domain: with very confident logits p underflows to 0 for whole
    # classes, and log(mean p) would be -inf, giving 0 · inf = NaN terms; logsumexp stays finite
    # and the underflowed terms are 0 · finite = 0, as 0 · log 0 = 0 by convention.
    log_marginal = logsumexp(log_p, axis=0, keepdims=True) - np.log(log_p.shape[0])
    return float(np.exp((p * (log_p - log_marginal)).sum(axis=1).mean()))


def logits_to_inception_score(logits: np.ndarray, *, seed: int, splits: int = DEFAULT_SPLITS,
                              shuffle: bool = True) -> InceptionScoreResult:
    """IS of (N, C) logits; N >= splits so every chunk has a sample."""
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise TrecsEvalError(f"IS needs (N, C) logits, got shape {x.shape}")
    n = x.shape[0]
    if splits < 1:
        raise TrecsEvalError(f"IS splits must be >= 1, got {splits}")
    if n < splits:
        raise TrecsEvalError(f"IS with {splits} splits needs at least {splits} images, got {n}")
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    log_p = log_softmax(x, axis=1)
    scores = np.array([split_score(log_p[i * n // splits:(i + 1) * n // splits])
                       for i in range(splits)])
    if not np.all(np.isfinite(scores)):
        raise TrecsEvalError("Inception Score is not finite; logits contain NaN or inf")
    return InceptionScoreResult(float(scores.mean()), float(scores.std()), scores)

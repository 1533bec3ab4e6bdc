"""IS stays finite when class probabilities underflow to 0 (found by the demo: uncalibrated
Inception on noise images); closed forms: one-hot on one class -> 1, on k classes equally -> k."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from trecs_eval.metrics.inception_score import logits_to_inception_score

IS_ABS_TOL = 1e-12
IS_REL_TOL_VS_MPMATH = 1e-10  # float64 log-domain sums vs 50 digits
HUGE_LOGIT = 2000.0  # exp(-2000) underflows to exactly 0 in float64


@pytest.mark.parametrize("k", [1, 2, 4])
def test_one_hot_logits_give_the_number_of_classes_used(k: int) -> None:
    n, classes = 40, 10
    logits = np.zeros((n, classes))
    logits[np.arange(n), np.arange(n) % k] = HUGE_LOGIT  # every split sees the k classes equally
    result = logits_to_inception_score(logits, seed=0, splits=2, shuffle=False)
    assert result.mean == pytest.approx(k, abs=IS_ABS_TOL)
    assert np.all(np.isfinite(result.split_scores))


def _mpmath_inception_score(logits: np.ndarray, splits: int) -> list[float]:
    """Per-split IS in 50-digit arithmetic, written from the definition: nothing underflows."""
    mpmath.mp.dps = 50
    n = logits.shape[0]
    scores = []
    for i in range(splits):
        rows = [[mpmath.mpf(float(v)) for v in row] for row in logits[i * n // splits:(i + 1) * n // splits]]
        probs = []
        for row in rows:
            top = max(row)
            weights = [mpmath.exp(v - top) for v in row]
            total = mpmath.fsum(weights)
            probs.append([w / total for w in weights])
        marginal = [mpmath.fsum(col) / len(probs) for col in zip(*probs, strict=True)]
        kl = [mpmath.fsum(p * mpmath.log(p / m) for p, m in zip(row, marginal, strict=True) if p > 0)
              for row in probs]
        scores.append(float(mpmath.exp(mpmath.fsum(kl) / len(kl))))
    return scores


def test_tiny_but_nonzero_probabilities_match_extended_precision() -> None:
    """Large logits (±900 seen from uncalibrated Inception on noise images): whole classes
    underflow to p = 0 in float64 (log of their mean was -inf, and 0 · inf = NaN). The float64
    result must still equal the 50-digit computation, split by split."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 50)) * 3000.0
    result = logits_to_inception_score(logits, seed=0, splits=3, shuffle=False)
    expected = _mpmath_inception_score(logits, splits=3)
    np.testing.assert_allclose(result.split_scores, expected, rtol=IS_REL_TOL_VS_MPMATH)
    moderate = rng.normal(size=(30, 50)) * 4.0  # no underflow: the same reference, a generic case
    np.testing.assert_allclose(logits_to_inception_score(moderate, seed=0, splits=3, shuffle=False)
                               .split_scores, _mpmath_inception_score(moderate, 3),
                               rtol=IS_REL_TOL_VS_MPMATH)

"""IS stays finite when class probabilities underflow to 0 (found by the demo: uncalibrated
Inception on noise images); closed forms: one-hot on one class -> 1, on k classes equally -> k."""

from __future__ import annotations

import numpy as np
import pytest

from trecs_eval.metrics.inception_score import logits_to_inception_score

IS_ABS_TOL = 1e-12
HUGE_LOGIT = 2000.0  # exp(-2000) underflows to exactly 0 in float64


@pytest.mark.parametrize("k", [1, 2, 4])
def test_one_hot_logits_give_the_number_of_classes_used(k: int) -> None:
    n, classes = 40, 10
    logits = np.zeros((n, classes))
    logits[np.arange(n), np.arange(n) % k] = HUGE_LOGIT  # every split sees the k classes equally
    result = logits_to_inception_score(logits, seed=0, splits=2, shuffle=False)
    assert result.mean == pytest.approx(k, abs=IS_ABS_TOL)
    assert np.all(np.isfinite(result.split_scores))


def test_tiny_but_nonzero_probabilities_do_not_overflow() -> None:
    """Large logits (±900 seen from uncalibrated Inception on noise images): whole classes
    underflow to p = 0 in a chunk (log of their mean was -inf, and 0 · inf = NaN)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 50)) * 3000.0
    result = logits_to_inception_score(logits, seed=0, splits=3)
    assert np.all(np.isfinite(result.split_scores))
    assert 1.0 <= result.mean <= 50.0  # IS lies between 1 and the number of classes

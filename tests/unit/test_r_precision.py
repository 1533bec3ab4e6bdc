"""CLIP R-precision: hand-built ranks, brute-force reference, seeded negatives from other images."""

from __future__ import annotations

import numpy as np
import pytest

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci
from trecs_eval.metrics.r_precision import (
    available_negatives,
    compute_r_precision,
    retrieval_ranks,
    sample_negatives,
)


def _unit(deg: float) -> list[float]:
    return [float(np.cos(np.radians(deg))), float(np.sin(np.radians(deg)))]


def test_hand_built_ranks_with_pessimistic_ties() -> None:
    # texts at 0, 90, 180, 270 degrees; each image's negatives are all three other texts
    texts = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])  # exact, so ties are exact
    s = np.sqrt(0.5)
    images = np.array([
        _unit(0),       # true text cos 1, beats all: rank 1
        _unit(10),      # true (90) cos .17 < text 0 (cos .98): rank 2
        [s, s],         # true (180) -.71 < texts 0, 90 (.71), tie with 270 (-.71) counts against: rank 4
        _unit(90),      # true (270) cos -1, every other text scores higher: rank 4
    ])
    result = compute_r_precision(["a", "b", "c", "d"], ["1", "2", "3", "4"], images, texts, n_negatives=3)
    assert result.ranks == {"a": 1, "b": 2, "c": 4, "d": 4}
    assert result.metric.value == 0.25
    assert result.metric.per_sample == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}


def test_ranks_equal_brute_force_reference() -> None:
    rng = np.random.default_rng(0)
    n, d, k = 40, 8, 12
    image_ids = [f"img{i // 2}" for i in range(n)]  # two narratives per image
    v, t = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    negatives = sample_negatives(image_ids, k, seed=3)
    ranks = retrieval_ranks(v, t, negatives)
    for i in range(n):
        cos = [float(v[i] @ t[j] / np.linalg.norm(v[i]) / np.linalg.norm(t[j])) for j in range(n)]
        expected = 1 + sum(cos[j] >= cos[i] for j in negatives[i])
        assert ranks[i] == expected


def test_perfect_and_collapsed_embeddings() -> None:
    n = 120
    ids = [str(i) for i in range(n)]
    eye = np.eye(n)
    perfect = compute_r_precision(ids, ids, eye, eye, seed=1).metric
    assert (perfect.value, perfect.ci_low, perfect.ci_high) == (1.0, 1.0, 1.0)
    same = np.ones((n, 4))
    collapsed = compute_r_precision(ids, ids, same, same, seed=1)
    assert collapsed.metric.value == 0.0
    assert set(collapsed.ranks.values()) == {100}


def test_negatives_never_share_the_image_and_are_distinct() -> None:
    image_ids = [f"img{i % 70}" for i in range(300)]  # 4-5 narratives per image
    negatives = sample_negatives(image_ids, 99, seed=5)
    ids = np.array(image_ids)
    assert negatives.shape == (300, 99)
    assert np.all(ids[negatives] != ids[:, None])
    assert all(len(set(row)) == 99 for row in negatives.tolist())


def test_seed_determinism() -> None:
    image_ids = [str(i) for i in range(150)]
    np.testing.assert_array_equal(sample_negatives(image_ids, 99, 7), sample_negatives(image_ids, 99, 7))
    assert not np.array_equal(sample_negatives(image_ids, 99, 7), sample_negatives(image_ids, 99, 8))
    rng = np.random.default_rng(2)
    v, t = rng.normal(size=(150, 6)), rng.normal(size=(150, 6))
    a = compute_r_precision(image_ids, image_ids, v + t, t, seed=4)
    b = compute_r_precision(image_ids, image_ids, v + t, t, seed=4)
    assert a.metric == b.metric and a.ranks == b.ranks


def test_ci_is_the_bootstrap_of_hits() -> None:
    rng = np.random.default_rng(3)
    ids = [str(i) for i in range(200)]
    t = rng.normal(size=(200, 16))
    v = t + rng.normal(scale=2.0, size=t.shape)
    result = compute_r_precision(ids, ids, v, t, seed=9, n_resamples=500).metric
    hits = np.array([result.per_sample[i] for i in ids])
    assert 0.0 < result.value < 1.0
    assert (result.value, result.ci_low, result.ci_high) == bootstrap_mean_ci(hits, 500, seed=9)
    assert result.params["n_negatives"] == 99 and result.seed == 9


def test_too_few_negatives_errors_or_warns_when_allowed() -> None:
    image_ids = ["a", "a", "b", "c", "d"]
    assert available_negatives(image_ids).tolist() == [3, 3, 4, 4, 4]
    v = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(TrecsEvalError, match="only 3 narratives of other images"):
        compute_r_precision(list("12345"), image_ids, v, v)
    result = compute_r_precision(list("12345"), image_ids, v, v, allow_fewer_negatives=True)
    assert result.metric.params["n_negatives"] == 3
    assert "only 3 negatives" in result.metric.warnings[0]

"""HMM tagger pieces: Viterbi vs brute force, IBM Model 1 EM, tf-idf closed form, constrained mode."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from reference_pipeline.tag.hmm import train_hmm, viterbi
from reference_pipeline.tag.ibm1 import train_ibm1
from reference_pipeline.tag.tfidf import tfidf_weights

SCORE_ABS_TOL = 1e-9  # sums of a few dozen float64 logs
EM_MONOTONE_SLACK = 1e-9  # EM may only lose round-off, never likelihood


def _brute_force(log_start, log_trans, log_emit) -> float:
    n_steps, n_states = log_emit.shape
    best = -math.inf
    for path in itertools.product(range(n_states), repeat=n_steps):
        score = log_start[path[0]] + sum(log_emit[t, s] for t, s in enumerate(path))
        score += sum(log_trans[a, b] for a, b in itertools.pairwise(path))
        best = max(best, score)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_viterbi_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_states, n_steps = int(rng.integers(2, 5)), int(rng.integers(1, 6))
    log_start = np.log(rng.dirichlet(np.ones(n_states)))
    log_trans = np.log(rng.dirichlet(np.ones(n_states), size=n_states)) * rng.uniform(1, 10)
    log_emit = np.log(rng.uniform(0.01, 1, size=(n_steps, n_states)))
    path, score = viterbi(log_start, log_trans, log_emit)
    assert len(path) == n_steps
    recomputed = log_start[path[0]] + log_emit[np.arange(n_steps), path].sum()
    recomputed += sum(log_trans[a, b] for a, b in itertools.pairwise(path))
    assert score == pytest.approx(recomputed, abs=SCORE_ABS_TOL)
    assert score == pytest.approx(_brute_force(log_start, log_trans, log_emit), abs=SCORE_ABS_TOL)


def test_ibm1_log_likelihood_never_decreases_and_learns_alignment() -> None:
    # words 0,1 co-occur with label 0 and words 2,3 with label 1; word 4 appears with both.
    rng = np.random.default_rng(0)
    docs, bags = [], []
    for _ in range(60):
        kind = int(rng.integers(3))
        if kind == 0:
            docs.append(rng.choice([0, 1, 4], size=5))
            bags.append(np.array([0]))
        elif kind == 1:
            docs.append(rng.choice([2, 3, 4], size=5))
            bags.append(np.array([1]))
        else:
            docs.append(rng.choice([0, 1, 2, 3, 4], size=8))
            bags.append(np.array([0, 1]))
    model = train_ibm1(docs, bags, n_words=5, n_labels=3, iterations=15)
    lls = np.array(model.log_likelihoods)
    assert np.all(np.diff(lls) >= -EM_MONOTONE_SLACK)
    assert lls[-1] > lls[0]
    assert model.prob[:, :2].sum(axis=0) == pytest.approx([1.0, 1.0])
    assert model.prob[[0, 1], 0].sum() > 0.6 and model.prob[[2, 3], 1].sum() > 0.6
    assert model.prob[:, 2] == pytest.approx(np.full(5, 0.2))  # label in no bag stays uniform


def test_tfidf_closed_form() -> None:
    # docs [a a b], [b]: idf_a = ln(3/2) + 1, alpha_a = 2/3 idf_a; idf_b = 1, alpha_b = 2/3
    alpha = tfidf_weights([[0, 0, 1], [1]], vocabulary_size=3)
    assert alpha[0] == pytest.approx(2 / 3 * (math.log(1.5) + 1))
    assert alpha[1] == pytest.approx(2 / 3)
    assert alpha[2] == 0.0


def _toy_corpus() -> tuple[list[list[str]], list[list[str]]]:
    words = [["a", "dog", "on", "grass"], ["grass", "and", "a", "dog"], ["sky", "above", "a", "dog"],
             ["a", "tree", "under", "sky"], ["tree", "on", "grass"]] * 4
    names = {"dog": "dog", "grass": "grass", "sky": "sky-other", "tree": "tree"}
    tags = []
    for seq in words:  # each filler word takes the label of the next content word (or the last one)
        out, current = [], None
        for word in reversed(seq):
            current = names.get(word, current)
            out.append(current or "grass")
        tags.append(out[::-1])
    return words, tags


def test_hmm_tags_content_words_and_respects_label_bag() -> None:
    words, tags = _toy_corpus()
    tagger = train_hmm(words, tags, transition_power=1.0)
    assert tagger.tag(["dog", "grass", "sky", "tree"]) == ["dog", "grass", "sky-other", "tree"]
    bag = {"grass", "tree"}
    for seq in words[:5]:
        constrained = tagger.tag(seq, allowed_labels=bag)
        assert set(constrained) <= bag and len(constrained) == len(seq)
    assert tagger.tag(["zebra", "unseen"]) and len(tagger.tag([])) == 0


def test_hmm_high_power_keeps_runs() -> None:
    words, tags = _toy_corpus()
    sticky = train_hmm(words, tags, transition_power=50.0).tag(["dog", "grass", "dog", "grass"])
    assert len(set(sticky)) == 1  # switching costs more than any emission gain


def test_hmm_is_deterministic_and_bag_labels_become_states() -> None:
    words, tags = _toy_corpus()
    bags = [set(t) | {"clouds"} for t in tags]
    first, second = train_hmm(words, tags, label_bags=bags), train_hmm(words, tags, label_bags=bags)
    assert "clouds" in first.labels
    assert np.array_equal(first.log_emit, second.log_emit)
    assert np.array_equal(first.log_trans, second.log_trans)


def test_empty_narratives_train_and_tag() -> None:
    words, tags = _toy_corpus()
    tagger = train_hmm([*words, [], ()], [*tags, [], ()], transition_power=1.0)  # tuples too
    assert tagger.tag(()) == [] and len(tagger.tag(("a", "dog"))) == 2

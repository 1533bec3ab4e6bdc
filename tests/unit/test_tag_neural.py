"""Neural tagger: seeded (same seed -> same weights), uses context, masks to the allowed bag."""

from __future__ import annotations

import numpy as np
import torch

from reference_pipeline.tag.baselines import train_baseline
from reference_pipeline.tag.neural import NeuralConfig, train_neural
from trecs_eval.metrics.tag_accuracy import word_accuracy

SMALL = NeuralConfig(embedding_dim=16, hidden_dim=16, epochs=12, batch_size=16, learning_rate=1e-2,
                     dropout=0.0, word_dropout=0.0, min_word_count=1, threads=1)
CONTEXT_GAIN_OVER_WORD_MAJORITY = 0.15  # filler words are ambiguous alone, decided by the next noun
NOUNS = {"dog": "dog", "cat": "cat", "tree": "tree", "grass": "grass", "sky": "sky-other"}
FILLERS = ["on", "the", "left", "right", "we", "can", "see", "a", "in", "there", "is"]


def _context_corpus(n: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Utterances 'filler... noun'; every word takes the label of the noun ending its utterance."""
    rng = np.random.default_rng(seed)
    words, tags = [], []
    for _ in range(n):
        seq, labels = [], []
        for _ in range(int(rng.integers(1, 4))):
            noun = str(rng.choice(list(NOUNS)))
            utterance = [str(w) for w in rng.choice(FILLERS, size=int(rng.integers(2, 6)))] + [noun]
            seq += utterance
            labels += [NOUNS[noun]] * len(utterance)
        words.append(seq)
        tags.append(labels)
    return words, tags


def test_same_seed_same_weights_other_seed_differs() -> None:
    words, tags = _context_corpus(40, seed=0)
    config = NeuralConfig(embedding_dim=8, hidden_dim=8, epochs=2, batch_size=8, threads=1)
    torch.manual_seed(123)
    before = torch.rand(1)
    first = train_neural(words, tags, seed=5, config=config).state_dict()["model"]
    second = train_neural(words, tags, seed=5, config=config).state_dict()["model"]
    other = train_neural(words, tags, seed=6, config=config).state_dict()["model"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    torch.manual_seed(123)
    assert torch.equal(before, torch.rand(1))  # training did not consume the caller's global RNG


def test_bilstm_uses_context_beyond_word_majority() -> None:
    train_words, train_tags = _context_corpus(240, seed=1)
    test_words, test_tags = _context_corpus(60, seed=2)
    neural = train_neural(train_words, train_tags, seed=0, config=SMALL)
    word_majority = train_baseline("word-majority", train_words, train_tags)
    neural_acc = word_accuracy(test_tags, [neural.tag(w) for w in test_words])
    baseline_acc = word_accuracy(test_tags, [word_majority.tag(w) for w in test_words])
    assert neural_acc >= baseline_acc + CONTEXT_GAIN_OVER_WORD_MAJORITY, (neural_acc, baseline_acc)
    bag = {"grass", "tree"}
    assert all(set(neural.tag(w, allowed_labels=bag)) <= bag for w in test_words[:10])
    assert neural.tag(["unseen", "words", "dog"])  # unknown words map to <unk>, still tagged

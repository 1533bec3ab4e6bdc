"""HMM tagger: the label refinement of TReCS (Koh et al. 2021), decoded with Viterbi.

States are labels c, observations words w. With tf-idf weights alpha_w (words) and alpha_c
(labels), each narrative one document (:mod:`reference_pipeline.tag.tfidf`), and IBM Model 1
expected counts n(w, c) trained on (narrative, label bag) pairs (:mod:`reference_pipeline.tag.ibm1`):

    P~(w|c)  = (n(w,c) + 1) / (Σ_w' n(w',c) + V)                 (add-1 smoothed IBM1)
    e(w|c)   = alpha_w · P~(w|c) / Σ_w' alpha_w' · P~(w'|c)        (emission)
    t(c'|c)  = alpha_c' · (Count(c→c') + 1) / Σ_c'' alpha_c'' · (Count(c→c'') + 1)
    pi(c)    = alpha_c · (Count(start→c) + 1) / Σ ...              (first word)

Counts come from the gold word-tag sequences. Decoding maximises
``ln pi(c_1) + Σ_i ln e(w_i|c_i) + power · Σ_i ln t(c_i|c_{i-1})``: the transitions are raised
to ``transition_power`` (default 10) so that a label keeps running across filler words, as
the tags do (they come from utterance-level trace hulls). Words unseen in training emit
uniformly (log-emission 0 for every state). Constrained mode keeps only the states in the
allowed label bag.

Measured (benchmarks/bench_tagger.py, 5-fold CV by image on LN-COCO val, word accuracy):
unconstrained with power 10: 31.9 % (runs never switch label: close to majority, 29.4 %);
power 1: 42.5 %; constrained to the image's gold label bag, power 10: 48.5 %. The HMM is the
paper's training-time refinement, not a strong free tagger; the fill baseline and the neural
tagger tag new narratives better.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from reference_pipeline.tag.base import check_words, known_allowed
from reference_pipeline.tag.ibm1 import train_ibm1
from reference_pipeline.tag.tfidf import tfidf_weights


def viterbi(log_start: np.ndarray, log_trans: np.ndarray,
            log_emissions: np.ndarray) -> tuple[list[int], float]:
    """Best state path and its log score for ``(T, S)`` log emissions; ``log_trans[s, s']`` from s to s'.

    Score of a path ``s_1..s_T = log_start[s_1] + Σ_t log_emissions[t, s_t] + Σ_t log_trans[s_{t-1}, s_t]``.
    Ties go to the lowest state index. Cost O(T·S²) in vectorized numpy.
    """
    n_steps, n_states = log_emissions.shape
    if n_steps == 0:
        return [], 0.0
    score = log_start + log_emissions[0]
    back = np.zeros((n_steps, n_states), dtype=np.int64)
    for step in range(1, n_steps):
        candidates = score[:, None] + log_trans  # [previous, next]
        back[step] = np.argmax(candidates, axis=0)
        score = candidates[back[step], np.arange(n_states)] + log_emissions[step]
    path = [int(np.argmax(score))]
    best = float(score[path[0]])
    for step in range(n_steps - 1, 0, -1):
        path.append(int(back[step, path[-1]]))
    return path[::-1], best


def _normalize_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / matrix.sum(axis=-1, keepdims=True)


class HMMTagger:
    """Viterbi tagger over labels with IBM1 emissions; build it with :func:`train_hmm`."""

    name = "hmm"

    def __init__(self, words: Sequence[str], labels: Sequence[str], log_start: np.ndarray,
                 log_trans: np.ndarray, log_emit: np.ndarray, transition_power: float = 10.0) -> None:
        self.words, self.labels = list(words), list(labels)
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.label_index = {c: i for i, c in enumerate(self.labels)}
        self.log_start = np.asarray(log_start, dtype=np.float64)
        self.log_trans = np.asarray(log_trans, dtype=np.float64)  # un-powered ln t(c'|c)
        self.log_emit = np.asarray(log_emit, dtype=np.float64)  # [word, label] ln e(w|c)
        self.transition_power = float(transition_power)

    def log_emissions(self, words: Sequence[str]) -> np.ndarray:
        """``(T, C)`` ln e(w_t|c); zero rows for words unseen in training (uniform emission)."""
        out = np.zeros((len(words), len(self.labels)))
        for t, word in enumerate(words):
            index = self.word_index.get(word)
            if index is not None:
                out[t] = self.log_emit[index]
        return out

    def tag(self, words: Sequence[str], allowed_labels: Collection[str] | None = None) -> list[str]:
        check_words(words)
        allowed = known_allowed(allowed_labels, self.label_index, self.name)
        states = (np.arange(len(self.labels)) if allowed is None
                  else np.array(sorted(self.label_index[c] for c in allowed)))
        path, _ = viterbi(
            self.log_start[states],
            self.transition_power * self.log_trans[np.ix_(states, states)],
            self.log_emissions(words)[:, states],
        )
        return [self.labels[states[s]] for s in path]

    def state_dict(self) -> dict[str, Any]:
        return {
            "words": self.words, "labels": self.labels, "transition_power": self.transition_power,
            "log_start": torch.from_numpy(self.log_start), "log_trans": torch.from_numpy(self.log_trans),
            "log_emit": torch.from_numpy(self.log_emit),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> HMMTagger:
        return cls(state["words"], state["labels"], state["log_start"].numpy(), state["log_trans"].numpy(),
                   state["log_emit"].numpy(), state["transition_power"])


def train_hmm(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], *,
              label_bags: Sequence[Collection[str]] | None = None, transition_power: float = 10.0,
              ibm1_iterations: int = 10, use_tfidf: bool = True, emission_counts: str = "ibm1",
              progress: bool = False) -> HMMTagger:
    """Fits the HMM. ``label_bags[i]`` is narrative i's image label bag for IBM1 (default: the set of
    its own gold tags); ``use_tfidf=False`` sets every alpha to 1 (an ablation);
    ``emission_counts="gold"`` replaces the IBM1 expected counts n(w, c) by the gold word-tag
    counts (a supervised HMM, for comparison with the paper's ``"ibm1"``)."""
    if emission_counts not in ("ibm1", "gold"):
        raise ValueError(f"emission_counts must be 'ibm1' or 'gold', got {emission_counts!r}")
    bags = [set(seq) for seq in tags] if label_bags is None else [set(b) for b in label_bags]
    if len(bags) != len(words):
        raise ValueError(f"{len(bags)} label bags for {len(words)} narratives")
    vocab = sorted({w for seq in words for w in seq})
    labels = sorted({c for seq in tags for c in seq} | {c for bag in bags for c in bag})
    word_index = {w: i for i, w in enumerate(vocab)}
    label_index = {c: i for i, c in enumerate(labels)}
    word_ids = [np.array([word_index[w] for w in seq], dtype=np.int64) for seq in words]
    tag_ids = [np.array([label_index[c] for c in seq], dtype=np.int64) for seq in tags]
    bag_ids = [np.array(sorted(label_index[c] for c in bag), dtype=np.int64) for bag in bags]
    n_words, n_labels = len(vocab), len(labels)
    if use_tfidf:
        alpha_w, alpha_c = tfidf_weights(word_ids, n_words), tfidf_weights(tag_ids, n_labels)
        # A label only in bags (never a tag) has alpha 0; give it the smallest positive weight.
        alpha_c = np.where(alpha_c > 0, alpha_c, alpha_c[alpha_c > 0].min())
    else:
        alpha_w, alpha_c = np.ones(n_words), np.ones(n_labels)

    if emission_counts == "ibm1":
        counts = train_ibm1(word_ids, bag_ids, n_words, n_labels, iterations=ibm1_iterations,
                            progress=progress).expected_counts
    else:
        counts = np.zeros((n_words, n_labels))
        np.add.at(counts, (np.concatenate(word_ids), np.concatenate(tag_ids)), 1.0)
    smoothed = (counts + 1.0) / (counts.sum(axis=0) + n_words)
    emit = _normalize_rows((alpha_w[:, None] * smoothed).T).T  # normalize over words per label

    transitions = np.ones((n_labels, n_labels))  # add-1
    starts = np.ones(n_labels)
    for seq in tag_ids:
        if len(seq) == 0:  # an empty narrative has no first label and no transition
            continue
        starts[seq[0]] += 1
        np.add.at(transitions, (seq[:-1], seq[1:]), 1.0)
    log_trans = np.log(_normalize_rows(transitions * alpha_c[None, :]))
    log_start = np.log(_normalize_rows(starts * alpha_c))
    return HMMTagger(vocab, labels, log_start, log_trans, np.log(emit), transition_power)

"""Retrieval: BM25 against an independent implementation of the formula, ranking rules, embeddings."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from reference_pipeline.bank import build_bank
from reference_pipeline.retrieve import (
    BM25_B,
    BM25_K1,
    BM25Retriever,
    EmbeddingRetriever,
    clip_retriever,
    label_terms,
    top_k,
)
from tests.trecs_scene import write_bank_dir
from trecs_eval.data.coco_stuff import ID_TO_NAME
from trecs_eval.errors import TrecsEvalError

BM25_ABS_TOL = 1e-12  # same float64 arithmetic, different summation order

SCENES = [
    [("sky-other", (0, 0, 64, 32)), ("grass", (0, 32, 64, 64)), ("dog", (8, 36, 24, 52))],
    [("sky-other", (0, 0, 64, 20)), ("sea", (0, 20, 64, 64)), ("boat", (40, 30, 60, 40))],
    [("wall-concrete", (0, 0, 64, 40)), ("floor-wood", (0, 40, 64, 64)), ("dog", (20, 30, 40, 60))],
    [("grass", (0, 0, 64, 64))],
    [("grass", (0, 0, 64, 64))],
]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = write_bank_dir(tmp_path_factory.mktemp("retrieve"), SCENES)
    return build_bank(root / "annotations.json", root / "images")


def reference_bm25(docs: list[list[str]], query: list[str]) -> list[float]:
    """Textbook BM25 written independently: loops over query terms with Okapi idf (+1 inside the log)."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    scores = []
    for doc in docs:
        tf = Counter(doc)
        total = 0.0
        for term in query:  # each occurrence counts once: qtf weighting
            df = sum(term in d for d in docs)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            f = tf[term]
            total += idf * f * (BM25_K1 + 1) / (f + BM25_K1 * (1 - BM25_B + BM25_B * len(doc) / avgdl))
        scores.append(total)
    return scores


def test_label_terms_split_hyphenated_names():
    assert label_terms("sky-other") == ["sky-other", "sky", "other"]
    assert label_terms("dog") == ["dog"]


def test_bm25_matches_independent_formula(bank):
    retriever = BM25Retriever(bank)
    docs = [[t for lab in bank.labels_of(i) for t in label_terms(ID_TO_NAME[lab])] for i in range(len(bank))]
    words = ["a", "dog", "on", "the", "grass", "under", "the", "sky", "dog"]
    labels = ["dog", "grass", "sky-other"]
    query = words + [t for lab in labels for t in label_terms(lab)]
    expected = reference_bm25(docs, query)
    assert np.allclose(retriever.scores(words, labels), expected, rtol=0, atol=BM25_ABS_TOL)
    assert top_k(retriever, words, labels, 1) == [0]  # the only image with dog, grass and sky


def test_plain_word_matches_part_of_label_and_ties_keep_bank_order(bank):
    retriever = BM25Retriever(bank)
    # "sky" alone matches images 0 and 1 (sky-other) and they tie: bank order decides.
    assert top_k(retriever, ["sky"], [], 2) == [0, 1]
    # Images 3 and 4 have identical bags: for a grass-only query they tie, keep order, and beat image 0
    # (shorter documents weigh a match more under BM25's length normalization).
    assert top_k(retriever, ["grass"], ["grass"], 3) == [3, 4, 0]
    ranking = retriever.rank(["zebra"], ["zebra"])  # unknown everywhere: all scores 0, bank order
    assert ranking.tolist() == list(range(len(bank)))


def test_ranking_does_not_depend_on_query_order(bank):
    retriever = BM25Retriever(bank)
    a = retriever.scores(["dog", "floor", "wall"], ["dog", "wall-concrete"])
    b = retriever.scores(["wall", "floor", "dog"], ["wall-concrete", "dog"])
    assert np.array_equal(a, b)
    assert top_k(retriever, ["dog", "floor", "wall"], ["dog", "wall-concrete"], 1) == [2]


def test_embedding_retriever_ranks_by_cosine(bank):
    image_vectors = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.1, 0, 1.0], [1.0, 1.0, 0], [0, 0, 5.0]])
    # Image 4 points exactly along the query (cosine 1) though it is long; image 2 is close (0.995).

    def embed_images(paths):
        assert len(paths) == len(bank)
        return image_vectors

    retriever = EmbeddingRetriever(bank, lambda texts: np.array([[0.0, 0.0, 2.0]]), embed_images)
    assert top_k(retriever, ["anything"], [], 2) == [4, 2]


def test_embedding_retriever_rejects_zero_vectors_and_bad_k(bank):
    with pytest.raises(TrecsEvalError, match="norm"):
        EmbeddingRetriever(bank, lambda t: np.ones((1, 2)), lambda p: np.zeros((len(p), 2)))
    with pytest.raises(TrecsEvalError, match="top_k"):
        top_k(BM25Retriever(bank), ["dog"], [], 0)


def test_clip_retriever_through_the_real_embedder(bank, tmp_path):
    from tests.clip_support import register_tiny_clip
    from trecs_eval.data.narratives import Narrative
    from trecs_eval.features.clip import ClipEmbedder
    from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint

    name = register_tiny_clip(tmp_path)
    weights = tmp_path / "tiny.pt"
    make_calibrated_clip_checkpoint(weights, name, seed=0)
    retriever = clip_retriever(bank, weights, model=name)
    words = ["a", "dog", "on", "grass"]
    ranking = retriever.rank(words, ["dog", "grass"])
    assert sorted(ranking.tolist()) == list(range(len(bank)))  # a full ranking, every image once
    # Independent: cosine similarities from the embedder itself, sorted (stable) by hand.
    embedder = ClipEmbedder(name, str(weights), text_policy="truncate", progress=False)
    images = embedder.image_embeddings([bank.image_path(i) for i in range(len(bank))])
    text = embedder.text_embeddings([Narrative("query", "q0", 0, " ".join(words))]).embeddings[0]
    expected = sorted(range(len(bank)), key=lambda i: -float(images[i] @ text))
    assert ranking.tolist() == expected

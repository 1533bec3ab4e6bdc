"""Retrieve: rank mask-bank images for a narrative (TReCS step 2).

Default: BM25 (Robertson & Zaragoza 2009) between the narrative and each bank image's label
bag. A bank image is the document ``terms(label)`` for each distinct label it holds, where
``terms("sky-other") = ["sky-other", "sky", "other"]`` (the whole label and its parts, so the
plain word "sky" matches). The query is the narrative's words plus its predicted labels (each
label occurrence contributes its terms). With term frequency ``f`` in the document, document
length ``|d|``, mean length ``avgdl``, ``N`` documents and ``n_t`` of them holding term ``t``:

    score(q, d) = sum_t qtf(t) · idf(t) · f·(k1 + 1) / (f + k1·(1 - b + b·|d|/avgdl))
    idf(t)      = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))

with ``k1 = 1.2``, ``b = 0.75``. Ties are broken by bank order, so rankings are deterministic.

A dual-encoder retriever (:class:`EmbeddingRetriever`) ranks by cosine similarity between a
text embedding of the narrative and image embeddings of the bank, given any pair of embedding
functions (e.g. open_clip through ``trecs_eval.features.clip``); see :func:`clip_retriever`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import sparse

from reference_pipeline.bank import MaskBank
from trecs_eval.data.coco_stuff import ID_TO_NAME, NAME_TO_ID
from trecs_eval.errors import TrecsEvalError

BM25_K1 = 1.2
BM25_B = 0.75
DEFAULT_TOP_K = 5


class Retriever(Protocol):
    """Ranks all bank images for a narrative, best first."""

    def rank(self, words: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        """All bank image indices (int64), best first, for the narrative's words and predicted labels."""
        ...


def label_terms(label_name: str) -> list[str]:
    """``"sky-other"`` -> ``["sky-other", "sky", "other"]``; a one-word label gives itself."""
    parts = label_name.split("-")
    return [label_name] if len(parts) == 1 else [label_name, *parts]


class BM25Retriever:
    """BM25 over bank label bags; the query is words + predicted labels (see the module doc)."""

    def __init__(self, bank: MaskBank, k1: float = BM25_K1, b: float = BM25_B) -> None:
        self.k1, self.b = k1, b
        docs = [Counter(t for lab in bank.labels_of(i) for t in label_terms(ID_TO_NAME[lab]))
                for i in range(len(bank))]
        vocab = sorted({t for d in docs for t in d})
        self._term_index = {t: j for j, t in enumerate(vocab)}
        rows = [i for i, doc in enumerate(docs) for _ in doc]
        cols = [self._term_index[t] for doc in docs for t in doc]
        counts = np.array([c for doc in docs for c in doc.values()], dtype=np.float64)
        lengths = np.array([sum(doc.values()) for doc in docs], dtype=np.float64)
        avgdl = float(lengths.mean()) if len(docs) else 1.0
        n_t = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocab))
        self._idf = np.log1p((len(docs) - n_t + 0.5) / (n_t + 0.5))
        norm = k1 * (1.0 - b + b * lengths / avgdl)
        # Per (document, term) BM25 weight, sparse (a bank image holds ~10-30 terms, COCO has
        # 118k images); a query's scores are one sparse matrix-vector product.
        weights = self._idf[cols] * counts * (k1 + 1.0) / (counts + norm[rows])
        self._weights = sparse.csr_matrix((weights, (rows, cols)), shape=(len(docs), len(vocab)))

    def query_vector(self, words: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        """Query term frequencies ``qtf`` over the bank vocabulary (unknown terms are ignored)."""
        terms = list(words)
        for label in labels:
            if label in NAME_TO_ID:
                terms.extend(label_terms(label))
        q = np.zeros(len(self._term_index), dtype=np.float64)
        for term, count in Counter(terms).items():
            j = self._term_index.get(term)
            if j is not None:
                q[j] = count
        return q

    def scores(self, words: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        """BM25 score of every bank image."""
        return np.asarray(self._weights @ self.query_vector(words, labels), dtype=np.float64)

    def rank(self, words: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        # Stable sort on -score: equal scores keep bank order.
        return np.argsort(-self.scores(words, labels), kind="stable")


class EmbeddingRetriever:
    """Dual-encoder retrieval: cosine similarity of a text embedding with precomputed image embeddings.

    ``embed_texts(list[str]) -> (n, d)`` and ``embed_images(list[Path]) -> (m, d)`` are any
    embedding functions (rows need not be normalized; they are L2-normalized here).
    """

    def __init__(self, bank: MaskBank, embed_texts: Callable[[list[str]], np.ndarray],
                 embed_images: Callable[[list[Path]], np.ndarray]) -> None:
        self._embed_texts = embed_texts
        images = np.asarray(embed_images([bank.image_path(i) for i in range(len(bank))]), dtype=np.float64)
        if images.shape[0] != len(bank):
            raise TrecsEvalError(f"image embedder returned {images.shape[0]} rows for {len(bank)} "
                                 "bank images")
        self._images = _l2_normalize(images)

    def rank(self, words: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        text = _l2_normalize(np.asarray(self._embed_texts([" ".join(words)]), dtype=np.float64))
        return np.argsort(-(self._images @ text[0]), kind="stable")


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise TrecsEvalError("an embedding has zero or non-finite norm; cannot rank by cosine similarity")
    return x / norms


def clip_retriever(bank: MaskBank, weights: str | Path, model: str | None = None,
                   device: str = "cpu") -> EmbeddingRetriever:
    """An :class:`EmbeddingRetriever` over open_clip embeddings (``trecs_eval.features.clip.ClipEmbedder``).

    ``weights`` is a local checkpoint file or an open_clip pretrained tag; ``model`` the open_clip
    architecture (default ViT-B-32). The query is the narrative's words joined by spaces,
    embedded with the ``truncate`` text policy; bank images are embedded once, here.
    """
    from trecs_eval.data.narratives import Narrative
    from trecs_eval.features.clip import DEFAULT_CLIP_MODEL, ClipEmbedder

    embedder = ClipEmbedder(model or DEFAULT_CLIP_MODEL, str(weights), device=device, text_policy="truncate",
                            progress=False)

    def embed_texts(texts: list[str]) -> np.ndarray:
        queries = [Narrative("query", f"q{i}", 0, text) for i, text in enumerate(texts)]
        return embedder.text_embeddings(queries).embeddings

    return EmbeddingRetriever(bank, embed_texts, embedder.image_embeddings)


def top_k(retriever: Retriever, words: Sequence[str], labels: Sequence[str],
          k: int = DEFAULT_TOP_K) -> list[int]:
    """The ``k`` best bank image indices (fewer if the bank is smaller)."""
    if k < 1:
        raise TrecsEvalError(f"top_k must be >= 1, got {k}")
    return [int(i) for i in retriever.rank(words, labels)[:k]]


def idf_table(retriever: BM25Retriever) -> dict[str, float]:
    """Term -> idf, for inspection and tests."""
    return {t: float(retriever._idf[j]) for t, j in retriever._term_index.items()}


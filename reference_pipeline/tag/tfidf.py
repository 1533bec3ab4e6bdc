"""Corpus-level tf-idf weights for terms (words or labels), each narrative one document.

For a term t over N documents, with ``df_t`` the number of documents containing t and
``tf_{t,d} = count_{t,d} / |d|``:

    idf_t   = ln((1 + N) / (1 + df_t)) + 1          (smoothed, never 0)
    alpha_t = (1 / df_t) · Σ_{d ∋ t} tf_{t,d} · idf_t   (mean tf-idf over the documents holding t)

Example: documents ``[a a b]`` and ``[b]``: idf_a = ln(3/2) + 1, alpha_a = (2/3)·idf_a;
idf_b = 1, alpha_b = (1/3 + 1) / 2 = 2/3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def tfidf_weights(documents: Sequence[Sequence[int]], vocabulary_size: int) -> np.ndarray:
    """alpha_t (float64, shape ``(vocabulary_size,)``) for term ids; terms never seen get 0."""
    n_docs = len(documents)
    df = np.zeros(vocabulary_size, dtype=np.float64)
    tf_sum = np.zeros(vocabulary_size, dtype=np.float64)
    for document in documents:
        if not len(document):
            continue
        counts = Counter(document)
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        freq = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        df[ids] += 1.0
        tf_sum[ids] += freq / len(document)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    alpha = np.zeros(vocabulary_size, dtype=np.float64)
    seen = df > 0
    alpha[seen] = tf_sum[seen] / df[seen] * idf[seen]
    return alpha

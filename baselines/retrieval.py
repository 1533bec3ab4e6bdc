"""``retrieval``: the nearest training image by text similarity — the classic strong baseline.

Each evaluation narrative is matched against a caption bank (by default the narratives and
images of ``context.train_dir``; or params ``narratives`` + ``images``) with TF-IDF cosine
similarity, and the bank image of the best match is returned:

    tf(t, d)  = count of token t in d        (tokens: :func:`trecs_eval.data.narratives.tokenize`)
    idf(t)    = ln((1 + N) / (1 + df(t))) + 1 (smoothed, as scikit-learn; N = bank size)
    v(d)      = tf · idf, L2-normalised;  sim(q, d) = v(q) · v(d)

Ties go to the bank entry with the smallest item id (deterministic). Query words absent from
the bank are ignored. With ``exclude_same_image = true`` (default) a bank entry of the same
image id as the query is never returned, so an image cannot retrieve itself.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from baselines._common import find_image, load_rgb, read_params
from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.localized_narratives import read_narratives
from trecs_eval.data.narratives import Narrative, tokenize
from trecs_eval.errors import ConfigError
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext

log = logging.getLogger(__name__)


class TfidfIndex:
    """TF-IDF vectors of a list of token lists; :meth:`query` gives cosine similarities."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        self.vocab: dict[str, int] = {t: i for i, t in enumerate(sorted({t for d in documents for t in d}))}
        df = np.zeros(len(self.vocab))
        for doc in documents:
            for token in set(doc):
                df[self.vocab[token]] += 1
        self.idf = np.log((1 + len(documents)) / (1 + df)) + 1
        self.matrix = self.vectors(documents)

    def vectors(self, documents: Sequence[Sequence[str]]) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for r, doc in enumerate(documents):
            counts = Counter(t for t in doc if t in self.vocab)
            weights = {self.vocab[t]: c * self.idf[self.vocab[t]] for t, c in counts.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for c, w in weights.items():
                rows.append(r)
                cols.append(c)
                vals.append(w / norm)
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(documents), len(self.vocab)))

    def query(self, documents: Sequence[Sequence[str]]) -> np.ndarray:
        """(len(documents), bank size) cosine similarities."""
        return (self.vectors(documents) @ self.matrix.T).toarray()


class RetrievalGenerator:
    """Params: ``narratives`` (LN JSONL) and ``images`` (folder of ``{item_id}.png`` or
    ``{image_id}.png|jpg``), both defaulting to ``context.train_dir``; ``image_size``;
    ``exclude_same_image``."""

    name: ClassVar[str] = "retrieval"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=False, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        p = read_params(self.name, params, {"narratives": None, "images": None,
                                            "image_size": context.image_size, "exclude_same_image": True})
        narratives_path, images_dir = _bank_paths(p, context)
        bank = sorted(read_narratives(narratives_path).narratives, key=lambda n: n.item_id)
        if not bank:
            raise ConfigError(f"retrieval: the caption bank {narratives_path} is empty")
        self.bank: list[Narrative] = bank
        self.image_paths = [_bank_image(images_dir, n) for n in bank]
        self.index = TfidfIndex([n.words for n in bank])
        self.size: int = p["image_size"]
        self.exclude_same_image: bool = p["exclude_same_image"]
        log.info("retrieval: caption bank of %d narratives, %d words", len(bank), len(self.index.vocab))

    def nearest(self, items: Sequence[EvalItem]) -> list[int]:
        """Bank index of each item's best match (ties: smallest index = smallest item id)."""
        sims = self.index.query([tokenize(it.narrative.caption) for it in items])
        if self.exclude_same_image:
            bank_ids = np.array([n.image_id for n in self.bank])
            for row, it in enumerate(items):
                sims[row, bank_ids == it.narrative.image_id] = -np.inf
        if np.isneginf(sims).all(axis=1).any():
            raise ConfigError("retrieval: the bank holds only the query's own image")
        return [int(i) for i in np.argmax(sims, axis=1)]  # argmax returns the first maximum

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        return [Generation(load_rgb(self.image_paths[i], self.size)) for i in self.nearest(items)]


def _bank_paths(p: Mapping[str, Any], context: GeneratorContext) -> tuple[Path, Path]:
    if (p["narratives"] is None or p["images"] is None) and context.train_dir is None:
        raise ConfigError("retrieval needs a caption bank",
                          hint="set dataset.train_dir (toyworld layout) or params narratives + images")
    narratives = Path(p["narratives"]) if p["narratives"] else context.train_dir / "narratives.jsonl"
    images = Path(p["images"]) if p["images"] else context.train_dir / "images"
    for path in (narratives, images):
        if not path.exists():
            raise ConfigError(f"retrieval: caption bank path {path} does not exist")
    return narratives, images


def _bank_image(images_dir: Path, narrative: Narrative) -> Path:
    """``{item_id}.*`` (toyworld, flat naming), else ``{image_id}.*``, else COCO's zero-padded
    ``{image_id:012d}.jpg`` (``train2017/000000000009.jpg`` for LN image id ``9``)."""
    path = find_image(images_dir, narrative.item_id) or find_image(images_dir, narrative.image_id)
    if path is None and narrative.image_id.isdigit():
        path = find_image(images_dir, f"{int(narrative.image_id):012d}", ("jpg",))
    if path is None:
        raise ConfigError(f"retrieval: no image {narrative.item_id}.png or {narrative.image_id}.png|jpg "
                          f"in {images_dir} for a bank narrative")
    return path

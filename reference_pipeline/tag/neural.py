"""Neural tagger: a word-embedding BiLSTM with a per-word softmax over labels, trained on CPU.

Architecture: ``Embedding(V, E) -> BiLSTM(H per direction, L layers) -> Linear(2H, C)``;
loss = mean cross-entropy over real (non-padding) words. Words seen fewer than
``min_word_count`` times map to ``<unk>``, and during training each word is replaced by
``<unk>`` with probability ``word_dropout`` so the unknown embedding is learned. The
bidirectional context is what lets filler words ("on the left side we can see a") take the
label of the noun that follows them. Constrained mode masks the logits of labels outside the
allowed bag before the argmax.

Determinism: weights are initialised under ``torch.manual_seed(seed)`` inside a forked RNG
(the caller's global RNG is untouched) and batches are shuffled by ``numpy.random.default_rng(seed)``;
on CPU the same seed and data give the same weights.

Measured (benchmarks/bench_tagger.py, 5-fold CV by image on LN-COCO val, default config):
word accuracy 67.2 ± 0.9 %, macro-F1 40.5 ± 0.7 % (fill baseline 57.8 %, majority 29.4 %);
150-320 s wall to train one fold on the shared 2-core machine with 2-3 jobs running.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm import tqdm

from reference_pipeline.tag.base import check_words, known_allowed

PAD, UNK = "<pad>", "<unk>"


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Runs the block with ``n`` torch intra-op threads, restoring the caller's setting after."""
    previous = torch.get_num_threads()
    if previous != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if previous != n:
            torch.set_num_threads(previous)


@dataclass(frozen=True)
class NeuralConfig:
    """Hyper-parameters. One epoch over ~6.8k narratives (avg 38 words) costs about 20 s of CPU
    time on one thread here (1 epoch on 2,000 narratives: 6 s CPU)."""

    embedding_dim: int = 64
    hidden_dim: int = 128
    num_layers: int = 1
    dropout: float = 0.3
    word_dropout: float = 0.05
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 3e-3
    min_word_count: int = 2
    # torch intra-op threads while training and tagging. 1 by default: the ops here are small, and
    # on a shared 2-core machine 2 threads spent most of their time waiting for each other
    # (1 epoch on 2,000 narratives: 17 s with 1 thread, 258 s with 2, under load).
    threads: int = 1


class BiLSTMTagger(nn.Module):
    """Embedding -> BiLSTM -> linear label scores, on padded batches ``(B, T)`` with lengths."""

    def __init__(self, n_words: int, n_labels: int, config: NeuralConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_words, config.embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_dim, num_layers=config.num_layers,
                            batch_first=True, bidirectional=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(2 * config.hidden_dim, n_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.drop(self.embed(ids)), lengths, batch_first=True,
                                      enforce_sorted=False)
        hidden, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[1])
        return self.out(self.drop(hidden))


class NeuralTagger:
    """A trained :class:`BiLSTMTagger` with its vocabulary and label list."""

    name = "neural"

    def __init__(self, words: Sequence[str], labels: Sequence[str], config: NeuralConfig,
                 model: BiLSTMTagger) -> None:
        self.words, self.labels, self.config = list(words), list(labels), config
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.label_index = {c: i for i, c in enumerate(self.labels)}
        self.model = model.eval()

    def encode(self, words: Sequence[str]) -> torch.Tensor:
        unk = self.word_index[UNK]
        return torch.tensor([self.word_index.get(w, unk) for w in words], dtype=torch.long)

    def tag(self, words: Sequence[str], allowed_labels: Collection[str] | None = None) -> list[str]:
        check_words(words)
        allowed = known_allowed(allowed_labels, self.label_index, self.name)
        if not words:
            return []
        with torch.inference_mode(), torch_threads(self.config.threads):
            logits = self.model(self.encode(words)[None], torch.tensor([len(words)]))[0]
        if allowed is not None:
            mask = torch.full((len(self.labels),), -math.inf)
            mask[[self.label_index[c] for c in allowed]] = 0.0
            logits = logits + mask
        return [self.labels[i] for i in logits.argmax(dim=-1).tolist()]

    def state_dict(self) -> dict[str, Any]:
        return {"words": self.words, "labels": self.labels, "config": asdict(self.config),
                "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> NeuralTagger:
        config = NeuralConfig(**state["config"])
        model = BiLSTMTagger(len(state["words"]), len(state["labels"]), config)
        model.load_state_dict(state["model"])
        return cls(state["words"], state["labels"], config, model)


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Narratives of similar length together (less padding), batches in a seeded random order."""
    order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _pad(sequences: Sequence[np.ndarray], fill: int) -> torch.Tensor:
    out = np.full((len(sequences), max(len(s) for s in sequences)), fill, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = seq
    return torch.from_numpy(out)


def train_neural(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], *, seed: int = 0,
                 config: NeuralConfig = NeuralConfig(), progress: bool = False) -> NeuralTagger:
    """Trains the BiLSTM with Adam on word-level cross-entropy for ``config.epochs`` epochs."""
    counts = Counter(w for seq in words for w in seq)
    vocab = [PAD, UNK, *sorted(w for w, n in counts.items() if n >= config.min_word_count)]
    labels = sorted({c for seq in tags for c in seq})
    word_index = {w: i for i, w in enumerate(vocab)}
    label_index = {c: i for i, c in enumerate(labels)}
    keep = [i for i, seq in enumerate(words) if len(seq) > 0]
    word_ids = [np.array([word_index.get(w, 1) for w in words[i]], dtype=np.int64) for i in keep]
    tag_ids = [np.array([label_index[c] for c in tags[i]], dtype=np.int64) for i in keep]
    with torch_threads(config.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BiLSTMTagger(len(vocab), len(labels), config)
        _fit(model, word_ids, tag_ids, config, np.random.default_rng(seed), progress)
    return NeuralTagger(vocab, labels, config, model)


def _fit(model: BiLSTMTagger, word_ids: list[np.ndarray], tag_ids: list[np.ndarray], config: NeuralConfig,
         rng: np.random.Generator, progress: bool) -> None:
    """The training loop; the caller has seeded torch's RNG (dropout, word dropout)."""
    lengths = np.array([len(s) for s in word_ids])
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    n_labels = model.out.out_features
    model.train()
    steps = [b for _ in range(config.epochs) for b in _batches(lengths, config.batch_size, rng)]
    for batch in tqdm(steps, desc="train neural tagger", disable=not progress):
        ids = _pad([word_ids[i] for i in batch], 0)
        if config.word_dropout > 0:  # teach the <unk> embedding (id 1) on known words
            drop = torch.rand(ids.shape) < config.word_dropout
            ids = torch.where(drop & (ids > 0), torch.ones_like(ids), ids)
        targets = _pad([tag_ids[i] for i in batch], -100)
        logits = model(ids, torch.from_numpy(lengths[batch]))
        loss = loss_fn(logits.reshape(-1, n_labels), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()

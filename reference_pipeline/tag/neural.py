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
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm import tqdm

from reference_pipeline.tag.base import check_words, known_allowed

PAD, UNK = "<pad>", "<unk>"


@dataclass(frozen=True)
class NeuralConfig:
    """Hyper-parameters; the defaults train on ~6.8k narratives in about a minute per epoch pair."""

    embedding_dim: int = 64
    hidden_dim: int = 128
    num_layers: int = 1
    dropout: float = 0.3
    word_dropout: float = 0.05
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 3e-3
    min_word_count: int = 2
    threads: int = 2  # torch intra-op threads while training (the machines here have 2 cores)


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
        with torch.inference_mode():
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
    word_ids = [np.array([word_index.get(w, 1) for w in seq], dtype=np.int64) for seq in words]
    tag_ids = [np.array([label_index[c] for c in seq], dtype=np.int64) for seq in tags]
    lengths = np.array([len(s) for s in word_ids])
    rng = np.random.default_rng(seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = BiLSTMTagger(len(vocab), len(labels), config)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
            loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
            model.train()
            steps = [(e, b) for e in range(config.epochs) for b in _batches(lengths[lengths > 0],
                                                                            config.batch_size, rng)]
            nonempty = np.flatnonzero(lengths > 0)
            for _epoch, batch in tqdm(steps, desc="train neural tagger", disable=not progress):
                chosen = nonempty[batch]
                ids = _pad([word_ids[i] for i in chosen], 0)
                if config.word_dropout > 0:
                    drop = torch.rand(ids.shape) < config.word_dropout
                    ids = torch.where(drop & (ids > 0), torch.ones_like(ids), ids)
                targets = _pad([tag_ids[i] for i in chosen], -100)
                logits = model(ids, torch.from_numpy(lengths[chosen]))
                loss = loss_fn(logits.reshape(-1, len(labels)), targets.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(previous_threads)
    return NeuralTagger(vocab, labels, config, model)

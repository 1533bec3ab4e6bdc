"""Tag accuracy: predicted word labels against gold word labels (pure functions, no I/O).

Inputs are parallel sequences of tag sequences (one sequence per narrative, one label per word).
Every pair of sequences must have the same length; a mismatch is an :class:`InputError` naming
the sequence (1-based, i.e. the line of a TReCS tags file).

Definitions (N words in total, 1[.] the indicator):

* word accuracy ``= (1/N) Σ_i 1[pred_i == gold_i]``, a fraction in [0, 1].
* per label c: ``tp_c = #{i: pred_i = gold_i = c}``, ``precision_c = tp_c / #{pred_i = c}``,
  ``recall_c = tp_c / #{gold_i = c}`` (the support), ``F1_c = 2·P·R / (P + R)``. A ratio with a
  zero denominator is defined as 0 (the convention of scikit-learn's ``zero_division=0``).
* macro-F1 ``= mean of F1_c`` over the labels that occur in gold or in the predictions (their
  union), each label counting once whatever its support.

Example: gold ``[["a", "a", "b"]]``, pred ``[["a", "b", "b"]]`` gives accuracy 2/3,
F1_a = 2/3, F1_b = 2/3, macro-F1 = 2/3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from trecs_eval.errors import InputError
from trecs_eval.metrics.types import MetricInfo

WORD_ACCURACY_INFO = MetricInfo(
    "tag_word_accuracy", higher_is_better=True, unit="fraction",
    description="fraction of words whose predicted label equals the gold label",
)
MACRO_F1_INFO = MetricInfo(
    "tag_macro_f1", higher_is_better=True, unit="fraction",
    description="unweighted mean of per-label F1 over labels in gold or predictions",
)


@dataclass(frozen=True)
class LabelScores:
    """Precision, recall and F1 of one label; ``support`` = gold count, ``predicted`` = predicted count."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    true_positives: int


@dataclass(frozen=True)
class TagAccuracy:
    """All tag-accuracy numbers of one prediction set; ``per_label`` sorted by support, descending."""

    word_accuracy: float
    macro_f1: float
    n_words: int
    n_sequences: int
    per_label: tuple[LabelScores, ...]


def flatten_pairs(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> tuple[list[str], list[str]]:
    """Concatenates the sequences after checking that they line up word for word."""
    if len(gold) != len(pred):
        raise InputError(f"{len(gold)} gold tag sequences but {len(pred)} predicted ones", field="tags")
    flat_gold: list[str] = []
    flat_pred: list[str] = []
    for index, (gold_seq, pred_seq) in enumerate(zip(gold, pred, strict=True)):
        if isinstance(gold_seq, str) or isinstance(pred_seq, str):
            raise InputError("each item must be a sequence of labels, not a string", line=index + 1,
                             field="tags")
        if len(gold_seq) != len(pred_seq):
            raise InputError(f"{len(gold_seq)} gold tags but {len(pred_seq)} predicted tags",
                             line=index + 1, field="tags")
        flat_gold.extend(gold_seq)
        flat_pred.extend(pred_seq)
    if not flat_gold:
        raise InputError("no words to score (all sequences are empty)", field="tags")
    return flat_gold, flat_pred


def _ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, 0.0 when the denominator is 0 (documented convention)."""
    return numerator / denominator if denominator else 0.0


def word_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Fraction of words whose predicted label equals the gold label."""
    flat_gold, flat_pred = flatten_pairs(gold, pred)
    return sum(g == p for g, p in zip(flat_gold, flat_pred, strict=True)) / len(flat_gold)


def per_label_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> list[LabelScores]:
    """Per-label precision/recall/F1 for every label in gold ∪ predictions, by support then name."""
    flat_gold, flat_pred = flatten_pairs(gold, pred)
    support = Counter(flat_gold)
    predicted = Counter(flat_pred)
    hits = Counter(g for g, p in zip(flat_gold, flat_pred, strict=True) if g == p)
    scores = []
    for label in set(support) | set(predicted):
        precision = _ratio(hits[label], predicted[label])
        recall = _ratio(hits[label], support[label])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        scores.append(LabelScores(label, precision, recall, f1, support[label], predicted[label],
                                  hits[label]))
    return sorted(scores, key=lambda s: (-s.support, s.label))


def macro_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Unweighted mean of per-label F1 over labels present in gold or predictions."""
    scores = per_label_scores(gold, pred)
    return sum(s.f1 for s in scores) / len(scores)


def tag_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> TagAccuracy:
    """Word accuracy, macro-F1 and the per-label table in one pass over the data."""
    scores = per_label_scores(gold, pred)
    n_words = sum(s.support for s in scores)
    correct = sum(s.true_positives for s in scores)
    return TagAccuracy(
        word_accuracy=correct / n_words,
        macro_f1=sum(s.f1 for s in scores) / len(scores),
        n_words=n_words,
        n_sequences=len(gold),
        per_label=tuple(scores),
    )


def format_per_label_table(scores: Sequence[LabelScores], limit: int | None = None) -> str:
    """A fixed-width text table (label, precision, recall, F1, support, predicted)."""
    rows = list(scores)[:limit] if limit is not None else list(scores)
    width = max([len("label"), *(len(s.label) for s in rows)])
    lines = [f"{'label':<{width}}  precision  recall      f1  support  predicted"]
    for s in rows:
        lines.append(f"{s.label:<{width}}  {s.precision:9.4f}  {s.recall:6.4f}  {s.f1:6.4f}"
                     f"  {s.support:7d}  {s.predicted:9d}")
    return "\n".join(lines)

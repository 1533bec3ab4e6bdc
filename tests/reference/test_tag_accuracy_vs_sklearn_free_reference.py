"""Tag accuracy against independent computations: hand-worked confusion matrices and a
confusion-matrix implementation written separately from the module (sklearn is not installed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trecs_eval.errors import InputError
from trecs_eval.metrics.tag_accuracy import macro_f1, per_label_scores, tag_accuracy, word_accuracy

EXACT_ABS_TOL = 1e-12  # both sides are a few float divisions of small integers


def _confusion_reference(gold: list[str], pred: list[str]) -> tuple[float, float, dict[str, tuple]]:
    """Accuracy, macro-F1 and per-label (P, R, F1, support) from a numpy confusion matrix."""
    labels = sorted(set(gold) | set(pred))
    index = {c: i for i, c in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)  # [gold, pred]
    for g, p in zip(gold, pred, strict=True):
        confusion[index[g], index[p]] += 1
    tp = np.diag(confusion).astype(float)
    pred_totals, gold_totals = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, pred_totals, out=np.zeros_like(tp), where=pred_totals > 0)
    recall = np.divide(tp, gold_totals, out=np.zeros_like(tp), where=gold_totals > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    table = {c: (precision[i], recall[i], f1[i], int(gold_totals[i])) for c, i in index.items()}
    return tp.sum() / confusion.sum(), float(f1.mean()), table


def test_hand_worked_example() -> None:
    # gold: a a a b b c ; pred: a a b b c c
    # a: tp 2, pred 2, gold 3 -> P 1, R 2/3, F1 0.8
    # b: tp 1, pred 2, gold 2 -> P 1/2, R 1/2, F1 1/2
    # c: tp 1, pred 2, gold 1 -> P 1/2, R 1, F1 2/3
    gold = [["a", "a", "a"], ["b", "b", "c"]]
    pred = [["a", "a", "b"], ["b", "c", "c"]]
    assert word_accuracy(gold, pred) == pytest.approx(4 / 6, abs=EXACT_ABS_TOL)
    assert macro_f1(gold, pred) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3, abs=EXACT_ABS_TOL)
    scores = {s.label: s for s in per_label_scores(gold, pred)}
    assert (scores["a"].precision, scores["a"].recall, scores["a"].support) == (1.0, pytest.approx(2 / 3), 3)
    assert scores["c"].f1 == pytest.approx(2 / 3, abs=EXACT_ABS_TOL)


def test_label_only_predicted_counts_in_macro_f1_with_zero() -> None:
    # gold a a ; pred a z: a P 1 R 1/2 F1 2/3; z P 0 R 0 (no support) F1 0 -> macro 1/3
    assert macro_f1([["a", "a"]], [["a", "z"]]) == pytest.approx(1 / 3, abs=EXACT_ABS_TOL)


labels = st.sampled_from(["person", "tree", "sky-other", "grass", "wall-concrete"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(labels, labels), min_size=1, max_size=12), min_size=1, max_size=6))
def test_matches_confusion_matrix_reference(pairs: list[list[tuple[str, str]]]) -> None:
    gold = [[g for g, _ in seq] for seq in pairs]
    pred = [[p for _, p in seq] for seq in pairs]
    flat_gold, flat_pred = [g for s in gold for g in s], [p for s in pred for p in s]
    ref_acc, ref_macro, ref_table = _confusion_reference(flat_gold, flat_pred)
    result = tag_accuracy(gold, pred)
    assert result.word_accuracy == pytest.approx(ref_acc, abs=EXACT_ABS_TOL)
    assert result.macro_f1 == pytest.approx(ref_macro, abs=EXACT_ABS_TOL)
    for s in result.per_label:
        expected = ref_table[s.label]
        assert (s.precision, s.recall, s.f1, s.support) == pytest.approx(expected, abs=EXACT_ABS_TOL)


def test_invariant_to_narrative_order_and_identical_sets() -> None:
    gold = [["a", "b", "b"], ["c"], ["a", "a"]]
    pred = [["a", "a", "b"], ["a"], ["a", "c"]]
    forward = tag_accuracy(gold, pred)
    backward = tag_accuracy(gold[::-1], pred[::-1])
    assert (forward.word_accuracy, forward.macro_f1) == (backward.word_accuracy, backward.macro_f1)
    perfect = tag_accuracy(gold, gold)
    assert perfect.word_accuracy == 1.0 and perfect.macro_f1 == 1.0


def test_mismatched_lengths_name_the_sequence() -> None:
    with pytest.raises(InputError, match=r"^2: field 'tags': 2 gold tags but 1 predicted"):
        word_accuracy([["a"], ["a", "b"]], [["a"], ["a"]])
    with pytest.raises(InputError, match="no words"):
        macro_f1([[]], [[]])

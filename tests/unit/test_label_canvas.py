"""Label-canvas metrics: closed-form trace-canvas cases, mIoU/pixel accuracy vs an independent confusion
matrix, tag metrics vs tag_accuracy.py, invariances and failure modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.trecs_scene import make_narrative
from trecs_eval.data.coco_stuff import NAME_TO_ID, write_label_map
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics import tag_accuracy as tag_metrics
from trecs_eval.metrics.label_canvas import (
    class_counts,
    label_canvas_metrics,
    miou_from_counts,
    pixel_accuracy_from_counts,
    point_pixels,
    segmentation_metrics,
    tag_metrics_results,
    trace_canvas_accuracy,
    word_trace_accuracies,
)

EXACT = 1e-12  # float64 sums of small integers: agreement up to round-off only
N_RESAMPLES = 200
SKY, GRASS, DOG = (NAME_TO_ID[n] for n in ("sky-other", "grass", "dog"))


def half_canvas() -> np.ndarray:
    canvas = np.full((10, 10), GRASS, dtype=np.uint8)
    canvas[:5] = SKY  # top half sky
    return canvas


def item(item_id: str, tags: list[str], utterances, gold_seg=None) -> EvalItem:
    return EvalItem(make_narrative(item_id, utterances), gold_tags=tuple(tags), gold_segmentation=gold_seg)


def test_point_pixels_floor_and_clip():
    rows, cols = point_pixels(np.array([[0.0, 0.0], [0.999, 0.5], [1.0, 1.0], [1.2, -0.1]]), (10, 20))
    assert rows.tolist() == [0, 5, 9, 0] and cols.tolist() == [0, 19, 19, 19]


def test_word_accuracies_closed_form():
    # "blue sky" is traced over the top half (2 of 2 points in sky); "green grass" has 1 of 4 points in grass.
    it = item("1_1", ["sky-other", "sky-other", "grass", "grass", "dog"],
              [("blue sky", [(0.1, 0.1), (0.9, 0.2)]),
               ("green grass", [(0.5, 0.9), (0.5, 0.1), (0.2, 0.2), (0.3, 0.3)]),
               ("dog", [])])
    scores = word_trace_accuracies(it.narrative, it.gold_tags, half_canvas())
    assert scores == [1.0, 1.0, 0.25, 0.25, None]  # a word without points is not scored
    result = trace_canvas_accuracy([it], {"1_1": half_canvas()}, n_resamples=N_RESAMPLES)
    assert result.value == pytest.approx((1 + 1 + 0.25 + 0.25) / 4, abs=EXACT)
    assert result.per_sample == {"1_1": result.value} and result.n == 1


def test_trace_canvas_overall_is_mean_over_narratives_with_ci_and_order_invariance():
    items = [item("1_1", ["sky-other"], [("sky", [(0.5, 0.1)])]),
             item("2_1", ["grass"], [("grass", [(0.5, 0.1)])]),  # wrong: 0
             item("3_1", ["grass", "grass"], [("grass", [(0.5, 0.9), (0.5, 0.1)]), ("grass", [(0.5, 0.9)])])]
    canvases = {i.item_id: half_canvas() for i in items}
    result = trace_canvas_accuracy(items, canvases, seed=3, n_resamples=N_RESAMPLES)
    assert result.per_sample == {"1_1": 1.0, "2_1": 0.0, "3_1": 0.75}
    assert result.value == pytest.approx(1.75 / 3, abs=EXACT)
    assert result.ci_low <= result.value <= result.ci_high and result.seed == 3
    shuffled = trace_canvas_accuracy(items[::-1], canvases, seed=3, n_resamples=N_RESAMPLES)
    assert shuffled.value == pytest.approx(result.value, abs=EXACT)


def test_canvases_may_be_png_paths_as_in_a_run_directory(tmp_path):
    it = item("1_1", ["sky-other", "grass"], [("sky", [(0.5, 0.1)]), ("grass", [(0.5, 0.1), (0.5, 0.9)])])
    from_array = trace_canvas_accuracy([it], {"1_1": half_canvas()}, n_resamples=N_RESAMPLES)
    path = write_label_map(tmp_path / "1_1.png", half_canvas())
    from_path = trace_canvas_accuracy([it], {"1_1": path}, n_resamples=N_RESAMPLES)
    assert from_path.value == from_array.value == pytest.approx(0.75, abs=EXACT)


def test_trace_canvas_fails_loudly():
    it = item("1_1", ["sky-other"], [("sky", [(0.5, 0.1)])])
    with pytest.raises(TrecsEvalError, match="no canvas"):
        trace_canvas_accuracy([it], {})
    untraced = item("2_1", ["sky-other"], [("sky", [])])
    result = trace_canvas_accuracy([untraced], {"2_1": half_canvas()})
    assert result.status == "failed" and math.isnan(result.value) and result.warnings


def reference_confusion(gold: list[np.ndarray], pred: list[np.ndarray]) -> np.ndarray:
    """Independent: a 256×256 confusion matrix via np.histogram2d over labelled gold pixels."""
    g = np.concatenate([x.ravel() for x in gold]).astype(float)
    p = np.concatenate([x.ravel() for x in pred]).astype(float)
    keep = (g != 0) & (g != 255)
    conf, _, _ = np.histogram2d(g[keep], p[keep], bins=256, range=[[0, 256], [0, 256]])
    return conf


def reference_scores(conf: np.ndarray) -> tuple[float, float]:
    tp = np.diag(conf)
    pixel_acc = tp.sum() / conf.sum()
    ious = [tp[c] / (conf[c].sum() + conf[:, c].sum() - tp[c]) for c in range(1, 255)
            if conf[c].sum() + conf[:, c].sum() > 0]
    return pixel_acc, float(np.mean(ious))


def test_pixel_accuracy_and_miou_match_an_independent_confusion_matrix(tmp_path):
    rng = np.random.default_rng(7)
    labels = np.array([SKY, GRASS, DOG, 5, 150])
    golds = [rng.choice(np.append(labels, [0, 255]), size=(12, 16)).astype(np.uint8) for _ in range(6)]
    preds = [rng.choice(np.append(labels, [0, 9]), size=(12, 16)).astype(np.uint8) for _ in range(6)]
    items = []
    for k, gold in enumerate(golds):
        path = write_label_map(tmp_path / f"{k}.png", gold)
        items.append(item(f"{k}_1", ["dog"], [("dog", [(0.5, 0.5)])], gold_seg=path))
    canvases = {it.item_id: p for it, p in zip(items, preds, strict=True)}
    pixel_acc, miou = segmentation_metrics(items, canvases, seed=1, n_resamples=N_RESAMPLES)
    ref_acc, ref_miou = reference_scores(reference_confusion(golds, preds))
    assert pixel_acc.name == "canvas_pixel_accuracy" and miou.name == "canvas_miou"
    assert pixel_acc.value == pytest.approx(ref_acc, abs=EXACT)
    assert miou.value == pytest.approx(ref_miou, abs=EXACT)
    for it, gold, pred in zip(items, golds, preds, strict=True):
        acc_k, miou_k = reference_scores(reference_confusion([gold], [pred]))
        assert pixel_acc.per_sample[it.item_id] == pytest.approx(acc_k, abs=EXACT)
        assert miou.per_sample[it.item_id] == pytest.approx(miou_k, abs=EXACT)
    for r in (pixel_acc, miou):
        assert r.ci_low <= r.value <= r.ci_high and r.n == 6


def test_segmentation_closed_forms_and_resizing():
    gold = np.zeros((4, 4), dtype=np.uint8)
    gold[:2], gold[2:] = SKY, GRASS
    assert pixel_accuracy_from_counts(class_counts(gold, gold)) == 1.0
    assert miou_from_counts(class_counts(gold, gold)) == 1.0
    flipped = gold[::-1]
    assert pixel_accuracy_from_counts(class_counts(gold, flipped)) == 0.0
    assert miou_from_counts(class_counts(gold, flipped)) == 0.0
    # Half of sky predicted as grass: sky IoU 4/8, grass IoU 8/12, pixel accuracy 12/16.
    pred = gold.copy()
    pred[:1] = GRASS
    assert pixel_accuracy_from_counts(class_counts(gold, pred)) == 12 / 16
    assert miou_from_counts(class_counts(gold, pred)) == pytest.approx((4 / 8 + 8 / 12) / 2, abs=EXACT)
    # A canvas at twice the resolution is resized (nearest) to the gold map.
    assert miou_from_counts(class_counts(gold, np.kron(gold, np.ones((2, 2), np.uint8)))) == 1.0


def test_no_gold_segmentation_is_reported_not_hidden():
    it = item("1_1", ["sky-other"], [("sky", [(0.5, 0.1)])])
    results = label_canvas_metrics([it], {"1_1": half_canvas()}, n_resamples=N_RESAMPLES)
    names = {r.name: r for r in results}
    assert names["trace_canvas_accuracy"].status == "ok"
    assert names["canvas_miou"].status == "failed" and "gold segmentation" in names["canvas_miou"].warnings[0]


def test_tag_metrics_delegate_to_tag_accuracy():
    gold = [["sky-other", "sky-other", "dog"], ["grass", "dog"], ["dog", "dog", "dog", "grass"]]
    pred = [["sky-other", "grass", "dog"], ["grass", "grass"], ["dog", "dog", "sky-other", "grass"]]
    items = [item(f"{k}_1", g, [(" ".join(["w"] * len(g)), [(0.5, 0.5)])]) for k, g in enumerate(gold)]
    predicted = {it.item_id: p for it, p in zip(items, pred, strict=True)}
    acc, f1 = tag_metrics_results(items, predicted, seed=0, n_resamples=N_RESAMPLES)
    expected = tag_metrics.tag_accuracy(gold, pred)
    assert acc.name == "tag_accuracy" and acc.value == expected.word_accuracy
    assert f1.name == "tag_macro_f1" and f1.value == expected.macro_f1
    assert f1.params["per_label"]["dog"]["f1"] == next(s.f1 for s in expected.per_label if s.label == "dog")
    for k, it in enumerate(items):  # per-narrative values equal tag_accuracy on that narrative alone
        alone = tag_metrics.tag_accuracy([gold[k]], [pred[k]])
        assert acc.per_sample[it.item_id] == pytest.approx(alone.word_accuracy, abs=EXACT)
        assert f1.per_sample[it.item_id] == pytest.approx(alone.macro_f1, abs=EXACT)
    assert acc.ci_low <= acc.value <= acc.ci_high and f1.ci_low <= f1.value <= f1.ci_high
    with pytest.raises(TrecsEvalError, match="no predicted tags"):
        tag_metrics_results(items, {})


def test_segmentation_invariances(tmp_path):
    rng = np.random.default_rng(11)
    golds = [rng.choice([SKY, GRASS, DOG], size=(8, 8)).astype(np.uint8) for _ in range(5)]
    paths = [write_label_map(tmp_path / f"{k}.png", g) for k, g in enumerate(golds)]
    items = [item(f"{k}_1", ["dog"], [("dog", [(0.5, 0.5)])], gold_seg=p) for k, p in enumerate(paths)]
    perfect = segmentation_metrics(items, {it.item_id: g for it, g in zip(items, golds, strict=True)},
                                   n_resamples=N_RESAMPLES)
    assert [r.value for r in perfect] == [1.0, 1.0]  # a set against itself
    preds = {it.item_id: g[::-1].copy() for it, g in zip(items, golds, strict=True)}
    forward = segmentation_metrics(items, preds, seed=2, n_resamples=N_RESAMPLES)
    backward = segmentation_metrics(items[::-1], preds, seed=2, n_resamples=N_RESAMPLES)
    for a, b in zip(forward, backward, strict=True):  # item order changes nothing but the resampling
        assert a.value == pytest.approx(b.value, abs=EXACT) and a.per_sample == b.per_sample


def test_points_follow_words_when_the_caption_and_utterances_tokenize_differently():
    from trecs_eval.data.narratives import points_for_words

    narrative = make_narrative("1_1", [("a dog", [(0.1, 0.1)]), ("on grass", [(0.9, 0.9)])])
    points = points_for_words(narrative, ["a", "big", "dog", "on", "grass"])  # "big" is in no utterance
    assert [p.tolist() for p in points] == [[[0.1, 0.1]], [], [[0.1, 0.1]], [[0.9, 0.9]], [[0.9, 0.9]]]

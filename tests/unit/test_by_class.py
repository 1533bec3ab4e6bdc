"""Per-class breakdowns: class means, counts and intervals by hand, and the trace metrics that carry them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.test_trace_hit import HAND, HAND_TAGS, MAP, _narrative
from trecs_eval.data.evalset import EvalItem
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci
from trecs_eval.metrics.by_class import BY_CLASS_PARAM, class_breakdown
from trecs_eval.metrics.label_canvas import trace_canvas_accuracy
from trecs_eval.metrics.trace_hit import trace_hit_rate

MEAN_ABS_TOL = 1e-12


def test_class_means_counts_and_order_by_hand():
    labels = ["dog", "sky", "dog", "", "sky", "dog", "cat"]
    values = [1.0, 0.0, 0.0, 5.0, 1.0, 1.0, 0.25]
    images = ["a", "a", "b", "b", "c", "c", "c"]
    found = class_breakdown(labels, values, images, top=2, n_resamples=200, seed=0)
    assert list(found) == ["dog", "sky"]  # most frequent first; "" is no class; cat cut by top=2
    assert found["dog"]["n"] == 3 and found["dog"]["n_images"] == 3
    assert found["dog"]["mean"] == pytest.approx(2 / 3, abs=MEAN_ABS_TOL)
    assert found["sky"]["mean"] == pytest.approx(0.5, abs=MEAN_ABS_TOL)
    # the interval resamples whole images: dog's three words are three images of one word each
    _, low, high = bootstrap_mean_ci([1.0, 0.0, 1.0], n_resamples=200, seed=0, clusters=["a", "b", "c"])
    assert (found["dog"]["ci_low"], found["dog"]["ci_high"]) == (low, high)
    single = class_breakdown(["cat", "cat"], [0.0, 1.0], ["x", "x"], n_resamples=50)
    assert single["cat"]["ci_low"] is None and single["cat"]["mean"] == 0.5  # one image: no interval


def test_trace_hit_rate_breaks_down_by_span_label():
    items = [EvalItem(HAND, gold_tags=HAND_TAGS)]
    by_class = trace_hit_rate(items, {HAND.item_id: MAP}, n_resamples=50).params[BY_CLASS_PARAM]
    assert {k: v["mean"] for k, v in by_class.items()} == {"dog": 1.0, "grass": 0.0, "tree": 0.0}


def test_trace_canvas_accuracy_breaks_down_by_word_tag():
    # "a dog" half on the dog (2 points: one dog pixel, one unlabeled): acc 0.5 for both words
    nar = _narrative("img3", [("a dog", [(0.2, 0.2), (0.8, 0.2)]), ("green grass", [(0.5, 0.9)])])
    items = [EvalItem(nar, gold_tags=("dog", "dog", "grass", "grass"))]
    result = trace_canvas_accuracy(items, {nar.item_id: MAP}, n_resamples=50)
    by_class = result.params[BY_CLASS_PARAM]
    assert by_class["dog"]["n"] == 2 and by_class["dog"]["mean"] == pytest.approx(0.5, abs=MEAN_ABS_TOL)
    assert by_class["grass"]["mean"] == pytest.approx(1.0, abs=MEAN_ABS_TOL)
    assert math.isclose(result.value, np.mean([0.5, 0.5, 1.0, 1.0]))

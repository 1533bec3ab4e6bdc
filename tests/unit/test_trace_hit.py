"""trace_hit_rate: a hand-built case with a known answer, label spaces, and the oracle path on toyworld."""

from __future__ import annotations

import numpy as np
import pytest

from trecs_eval.data.coco_stuff import label_id
from trecs_eval.data.evalset import EvalItem, load_toyworld, read_gold_segmentation
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint
from trecs_eval.data.toyworld import write_toyworld
from trecs_eval.features.segmenter import OracleSegmenter, segment_images
from trecs_eval.metrics.trace_hit import Span, narrated_spans, span_hits, trace_hit_rate


def _narrative(item: str, utterances: list[tuple[str, list[tuple[float, float]]]]) -> Narrative:
    """Utterance k spans t in [k, k + 0.9]; its trace points are given as (x, y)."""
    timed, trace = [], []
    for k, (text, points) in enumerate(utterances):
        timed.append(TimedUtterance(text, float(k), k + 0.9))
        trace += [TracePoint(x, y, k + 0.1 + 0.7 * j / max(len(points), 1))
                  for j, (x, y) in enumerate(points)]
    caption = " ".join(text for text, _ in utterances)
    return Narrative("test", item, 1, caption, tuple(timed), (tuple(trace),))


# 10 x 10 map: dog in the top-left quarter, grass in the bottom half, unlabeled elsewhere.
MAP = np.zeros((10, 10), np.uint8)
MAP[:5, :5] = label_id("dog")
MAP[5:] = label_id("grass")
# "a dog" traced over the dog (and over nothing): hit. "on the grass" traced over the empty
# top-right: miss. "a tree" traced over grass: miss. Known answer: 1 of 3 spans.
HAND = _narrative("img1", [("a dog", [(0.2, 0.2), (0.8, 0.2)]), ("on the grass", [(0.9, 0.1)]),
                           ("a tree", [(0.5, 0.9)])])
HAND_TAGS = ("dog", "dog", "grass", "grass", "grass", "tree", "tree")


def test_spans_are_runs_of_label_tags() -> None:
    assert narrated_spans(["dog", "dog", "grass", "<none>", "grass"]) == [
        Span(0, 2, "dog"), Span(2, 3, "grass"), Span(4, 5, "grass")]


def test_hand_built_case_has_the_known_answer() -> None:
    outcomes = span_hits(HAND, HAND_TAGS, MAP)
    assert [o.hit for o in outcomes] == [True, False, False]
    untraced = _narrative("img2", [("a dog", [(0.2, 0.2)]), ("and a cat", [])])
    items = [EvalItem(HAND, gold_tags=HAND_TAGS),
             EvalItem(untraced, gold_tags=("dog", "dog", "cat", "cat", "cat"))]
    result = trace_hit_rate(items, {HAND.item_id: MAP, untraced.item_id: MAP}, n_resamples=200)
    # narratives: 1/3 and 1/1 (the cat span has no trace points and is not scored)
    assert result.value == pytest.approx((1 / 3 + 1) / 2)
    assert result.per_sample == pytest.approx({HAND.item_id: 1 / 3, untraced.item_id: 1.0})
    assert result.params["spans"] == 4 and result.params["hits"] == 2 and result.params["no_points"] == 1
    assert result.params["micro_hit_rate"] == pytest.approx(0.5)
    assert result.ci_low <= result.value <= result.ci_high


class _Panoptic:
    """A label space like a COCO-panoptic segmenter's: bush is reported as tree, metal never."""

    output_ids = frozenset({label_id("tree"), label_id("dog"), label_id("grass")})

    def canonical(self, label: int) -> int:
        return label_id("tree") if label == label_id("bush") else int(label)


def test_label_space_merges_and_excludes() -> None:
    tree_map = np.full((10, 10), label_id("tree"), np.uint8)
    narrative = _narrative("img3", [("a bush", [(0.5, 0.5)]), ("some metal", [(0.5, 0.5)])])
    tags = ("bush", "bush", "metal", "metal")
    assert [o.hit for o in span_hits(narrative, tags, tree_map)] == [False, False]
    merged = span_hits(narrative, tags, tree_map, _Panoptic().canonical, _Panoptic.output_ids)
    assert [o.hit for o in merged] == [True, None]
    result = trace_hit_rate([EvalItem(narrative, gold_tags=tags)], {narrative.item_id: tree_map},
                            label_space=_Panoptic(), n_resamples=10)
    assert result.value == 1.0 and result.params["not_in_label_space"] == 1


def test_no_scoreable_span_is_a_failure_not_a_number() -> None:
    narrative = _narrative("img4", [("a dog", [])])
    result = trace_hit_rate([EvalItem(narrative, gold_tags=("dog", "dog"))], {narrative.item_id: MAP})
    assert result.status == "failed" and np.isnan(result.value)


def test_real_images_through_the_oracle_score_the_gold_maps_value(tmp_path) -> None:
    write_toyworld(tmp_path / "tw", n=8, seed=5, image_size=64, progress=False)
    items = load_toyworld(tmp_path / "tw").items
    oracle = OracleSegmenter.from_toyworld(tmp_path / "tw", unknown="error")
    maps = segment_images(oracle, [item.reference_image for item in items])
    via_oracle = trace_hit_rate(items, {i.item_id: m for i, m in zip(items, maps, strict=True)},
                                label_space=oracle, n_resamples=50)
    gold = trace_hit_rate(items, {i.item_id: read_gold_segmentation(i) for i in items}, n_resamples=50)
    assert via_oracle.value == gold.value and via_oracle.per_sample == gold.per_sample
    assert via_oracle.params["spans"] > 8 and 0.0 < via_oracle.value <= 1.0

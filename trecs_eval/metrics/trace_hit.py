"""Trace hit rate: does the image put each narrated object where the narrator's trace points?

A *narrated object* is a span of words with one tag: a maximal run of consecutive words of
``narrative.words`` whose gold tag is the same COCO-Stuff label (the released TReCS tags give
every word the label of its object mention, so runs are mentions). Its trace points ``P_s`` are
the union of its words' points (:func:`trecs_eval.data.narratives.points_for_words`: the points
drawn while the word's utterance was spoken). On a label map ``L`` of the image (a segmenter's
output, or a system's canvas), with ``c(.)`` the segmenter's canonical label (merged classes
of a panoptic segmenter: ``bush`` -> ``tree``; identity otherwise):

    hit_s = 1[∃ p ∈ P_s : c(L(p)) = c(label_s)]        (point -> pixel as label_canvas.point_pixels)

Per narrative: the mean of ``hit_s`` over its scored spans; overall: the mean over narratives
(higher is better, a fraction), with a 95 % percentile bootstrap over narratives that resamples
whole images (several narratives of one image are not independent); ``params['by_class']`` is the
hit rate per span label (:mod:`trecs_eval.metrics.by_class`). Spans are not scored when
they have no trace points, or when the segmenter cannot output their label (``output_ids``:
e.g. ``plant-other`` for a COCO-panoptic segmenter); both counts are in ``params``.

Example: a narrative "a dog on grass" tagged ``dog dog grass grass`` has two spans; if the map
shows ``dog`` under one of the first utterance's points and nothing ``grass`` under the second
utterance's points, the narrative scores 0.5.

Interface::

    maps = segment_images(segmenter, image_paths)                 # features.segmenter
    result = trace_hit_rate(items, dict(zip(ids, maps)), label_space=segmenter, seed=0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from trecs_eval.data.coco_stuff import NAME_TO_ID
from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.narratives import Narrative, points_for_words
from trecs_eval.errors import InputError
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, DEFAULT_N_RESAMPLES, bootstrap_mean_ci
from trecs_eval.metrics.by_class import BY_CLASS_PARAM, class_breakdown
from trecs_eval.metrics.intervals import containment_warning
from trecs_eval.metrics.label_canvas import Canvases, canvas_of, point_pixels
from trecs_eval.metrics.types import MetricInfo, MetricResult

NO_POINTS = "no trace points"
OUTSIDE_LABEL_SPACE = "label not in the segmenter's label space"
INFO = MetricInfo("trace_hit_rate", True, "fraction",
                  "share of narrated objects (tagged word spans) whose label the image shows under "
                  "some of the span's trace points")


class LabelSpace(Protocol):
    """What a segmenter tells the metric about its labels (features.segmenter.Segmenter has it)."""

    output_ids: frozenset[int]

    def canonical(self, label: int) -> int:
        ...


@dataclass(frozen=True)
class Span:
    """Words ``[start, end)`` of a narrative tagged ``label`` (a COCO-Stuff name)."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class SpanHit:
    """A span and its outcome: ``hit`` is None when the span is not scored (``reason`` says why)."""

    span: Span
    n_points: int
    hit: bool | None
    reason: str = ""


def narrated_spans(tags: Sequence[str]) -> list[Span]:
    """Maximal runs of equal tags that are COCO-Stuff label names (other tags end a run, unscored)."""
    spans: list[Span] = []
    start = 0
    for i in range(1, len(tags) + 1):
        if i == len(tags) or tags[i] != tags[start]:
            if tags[start] in NAME_TO_ID:
                spans.append(Span(start, i, tags[start]))
            start = i
    return spans


def span_hits(narrative: Narrative, tags: Sequence[str], label_map: np.ndarray,
              canonical: Callable[[int], int] = int, output_ids: frozenset[int] | None = None
              ) -> list[SpanHit]:
    """The outcome of every narrated span of one narrative on one H×W label map (module doc)."""
    words = narrative.words
    if len(tags) != len(words):
        raise InputError(f"{len(tags)} gold tags for {len(words)} words", field="gold_tags",
                         hint=f"item {narrative.item_id}")
    points = points_for_words(narrative, words)
    shown = np.vectorize(canonical, otypes=[np.int64])
    out = []
    for span in narrated_spans(tags):
        label = NAME_TO_ID[span.label]
        span_points = np.concatenate([points[i].reshape(-1, 2) for i in range(span.start, span.end)])
        if output_ids is not None and canonical(label) not in output_ids:
            out.append(SpanHit(span, len(span_points), None, OUTSIDE_LABEL_SPACE))
        elif len(span_points) == 0:
            out.append(SpanHit(span, 0, None, NO_POINTS))
        else:
            rows, cols = point_pixels(span_points, label_map.shape)
            hit = bool(np.any(shown(label_map[rows, cols]) == canonical(label)))
            out.append(SpanHit(span, len(span_points), hit))
    return out


def _columns(rows: list[tuple[str, float, str]]) -> tuple[list[str], list[float], list[str]]:
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def trace_hit_rate(items: Sequence[EvalItem], label_maps: Canvases, *, label_space: LabelSpace | None = None,
                   seed: int = 0, n_resamples: int = DEFAULT_N_RESAMPLES, alpha: float = DEFAULT_ALPHA
                   ) -> MetricResult:
    """Mean over narratives of their span hit rate, bootstrap CI over images; per-narrative values.

    ``label_maps``: item id -> H×W label map (array or PNG path) of that item's image.
    ``label_space``: the segmenter that made the maps (canonical labels, output ids); None for
    maps in plain COCO-Stuff ids (canvases, gold maps, the oracle). The caller stamps ``system``,
    ``extractor`` and ``status``.
    """
    canonical = label_space.canonical if label_space is not None else int
    output_ids = label_space.output_ids if label_space is not None else None
    per_sample: dict[str, float] = {}
    images: list[str] = []
    counts = {"spans": 0, "hits": 0, "no_points": 0, "not_in_label_space": 0, "no_gold_tags": 0}
    spans: list[tuple[str, float, str]] = []  # per scored span: label, hit, image (the class breakdown)
    for item in items:
        if item.gold_tags is None:
            counts["no_gold_tags"] += 1
            continue
        label_map = canvas_of(label_maps, item)
        outcomes = span_hits(item.narrative, item.gold_tags, label_map, canonical, output_ids)
        scored = [o.hit for o in outcomes if o.hit is not None]
        image = item.narrative.image_id
        spans += [(o.span.label, float(o.hit), image) for o in outcomes if o.hit is not None]
        counts["no_points"] += sum(o.reason == NO_POINTS for o in outcomes)
        counts["not_in_label_space"] += sum(o.reason == OUTSIDE_LABEL_SPACE for o in outcomes)
        if scored:
            per_sample[item.item_id] = float(np.mean(scored))
            images.append(item.narrative.image_id)
            counts["spans"] += len(scored)
            counts["hits"] += sum(scored)
    micro = counts["hits"] / counts["spans"] if counts["spans"] else math.nan  # spans pooled
    params: dict[str, object] = {**counts, "n_resamples": n_resamples, "alpha": alpha,
                                 "n_clusters": len(set(images)), "micro_hit_rate": micro,
                                 BY_CLASS_PARAM: class_breakdown(*_columns(spans), n_resamples=n_resamples,
                                                                 seed=seed, alpha=alpha)}
    unscored = len(items) - len(per_sample)
    warnings = (f"{unscored} of {len(items)} narratives have no scoreable span",) if unscored else ()
    if not per_sample:
        return MetricResult(INFO.name, math.nan, True, 0, seed=seed, status="failed", params=params,
                            warnings=("no narrative has a tagged span with trace points",))
    mean, low, high = bootstrap_mean_ci(list(per_sample.values()), n_resamples, seed, alpha, clusters=images)
    warnings += containment_warning(INFO.name, mean, low, high)
    return MetricResult(INFO.name, mean, True, len(per_sample), low, high, seed=seed, warnings=warnings,
                        params=params, per_sample=per_sample)

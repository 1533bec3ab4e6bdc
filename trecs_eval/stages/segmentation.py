"""Segmenter-space metrics: trace adherence of ANY system, on the segmentation of its images.

A segmenter (``segmenter`` parameter: ``mask2former`` by default, ``toyworld_oracle`` on toyworld;
any registered segmenter extractor) maps each generated image to a COCO-Stuff label map; the
label-canvas metrics then score that map as they score a TReCS canvas. Named with a ``seg_``
prefix so they stand next to the canvas-based numbers of systems that draw canvases:

* ``seg_trace_accuracy``: :func:`~trecs_eval.metrics.label_canvas.trace_canvas_accuracy` on the map;
* ``seg_pixel_accuracy``, ``seg_miou``: :func:`~trecs_eval.metrics.label_canvas.segmentation_metrics`
  of the map against the gold segmentation;
* ``trace_hit_rate``: :func:`~trecs_eval.metrics.trace_hit.trace_hit_rate` (per narrated object:
  does the map show its label under some of its trace points).

A segmenter that merges classes (COCO panoptic) is scored on its canonical labels: map, gold tags
and gold map are all mapped to the representative of a merged group first (``label_lut``), so
``bush`` on a ``tree`` pixel is not a miss. With the oracle, real images score their gold value.

An image the segmenter gives no label at all (every pixel ``unlabeled``) was not segmented: the
toyworld oracle knows only toyworld's own images, and a real segmenter labels every pixel. A system
with such images gets these metrics as ``unavailable`` with the count in its warnings, never a 0
that would read as "puts nothing where the trace points" (TReCS collages scored 0 that way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from trecs_eval.data.coco_stuff import NAME_TO_ID, label_name
from trecs_eval.metrics import label_canvas, trace_hit
from trecs_eval.metrics.bootstrap import DEFAULT_N_RESAMPLES
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricOutput, MetricResult

DEFAULT_SEGMENTER = "mask2former"
_PARAMS = {"segmenter": DEFAULT_SEGMENTER, "n_resamples": DEFAULT_N_RESAMPLES}
_NEEDS = frozenset({"items"})
COUNTS_KEY = "seg_counts"  # features/{system}.npz: per-item class counts of the pooled ratios


def label_lut(label_space: Any) -> np.ndarray | None:
    """(256,) canonical id per COCO-Stuff id, or None when the segmenter merges nothing."""
    lut = np.array([label_space.canonical(i) for i in range(label_canvas.N_LABEL_IDS)], dtype=np.int64)
    return None if np.array_equal(lut, np.arange(label_canvas.N_LABEL_IDS)) else lut


def _canonical_items(inputs: MetricInputs, lut: np.ndarray | None) -> list[Any]:
    if lut is None:
        return list(inputs.items)
    def canonical(tag: str) -> str:
        return label_name(int(lut[NAME_TO_ID[tag]])) if tag in NAME_TO_ID else tag
    return [item if item.gold_tags is None
            else replace(item, gold_tags=tuple(canonical(t) for t in item.gold_tags))
            for item in inputs.items]


def _maps(inputs: MetricInputs, params: Mapping[str, Any]
          ) -> tuple[dict[str, np.ndarray], Any, np.ndarray | None]:
    found = inputs.features[params["segmenter"]]
    lut = label_lut(found.label_space)
    maps = [m if lut is None else lut[m] for m in found.maps]
    return dict(zip(inputs.item_ids, maps, strict=True)), found.label_space, lut


def _unsegmented(inputs: MetricInputs, params: Mapping[str, Any], name: str) -> MetricResult | None:
    """``unavailable`` when some image got no label at all from the segmenter (module doc), else None."""
    maps = inputs.features[params["segmenter"]].maps
    blank = sum(1 for m in maps if not np.any(np.asarray(m)))
    if blank == 0:
        return None
    info = REGISTERED_INFO[name]
    reason = (f"{blank} of {len(maps)} images got no label at all from segmenter {params['segmenter']!r} "
              "(the toyworld oracle knows only toyworld's own images; generated ones need a real segmenter)")
    result = MetricResult(name, float("nan"), info.higher_is_better, len(maps), status="unavailable",
                          warnings=(reason,), params={"unsegmented_images": blank})
    return _stamp(result, inputs, params, name)


def _stamp(result: MetricResult, inputs: MetricInputs, params: Mapping[str, Any], name: str) -> MetricResult:
    identity = dict(inputs.identities[params["segmenter"]])
    status = result.status if result.status in ("failed", "unavailable") else (
        "uncalibrated" if identity.get("uncalibrated") else "ok")
    return replace(result, name=name, extractor=identity, status=status,
        params={**result.params, "segmenter": params["segmenter"]})


def _seg_trace(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
    if (unavailable := _unsegmented(inputs, params, "seg_trace_accuracy")) is not None:
        return unavailable
    maps, _, lut = _maps(inputs, params)
    found = label_canvas.trace_canvas_accuracy(_canonical_items(inputs, lut), maps, seed=inputs.seed,
                                               n_resamples=params["n_resamples"])
    return _stamp(found, inputs, params, "seg_trace_accuracy")


def _seg_pixels(name: str, source: str) -> Any:
    def compute(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult | MetricOutput:
        if (unavailable := _unsegmented(inputs, params, name)) is not None:
            return unavailable
        maps, _, lut = _maps(inputs, params)
        found = label_canvas.segmentation_metrics(inputs.items, maps, seed=inputs.seed,
                                                  n_resamples=params["n_resamples"], label_lut=lut)
        counts = label_canvas.item_class_counts(inputs.items, maps, label_lut=lut)
        return MetricOutput(_stamp(next(r for r in found if r.name == source), inputs, params, name),
                            arrays={COUNTS_KEY: counts})

    compute.__name__ = f"compute_{name}"
    return compute


def _trace_hit(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
    if (unavailable := _unsegmented(inputs, params, "trace_hit_rate")) is not None:
        return unavailable
    found = inputs.features[params["segmenter"]]
    maps = dict(zip(inputs.item_ids, found.maps, strict=True))
    result = trace_hit.trace_hit_rate(inputs.items, maps, label_space=found.label_space, seed=inputs.seed,
                                      n_resamples=params["n_resamples"])
    return _stamp(result, inputs, params, "trace_hit_rate")


def _info(base: MetricInfo, name: str, display_name: str, order: int, interval: str,
          *, family: str = "layout accuracy", statistic: str = "") -> MetricInfo:
    """Missing values make these ``unavailable`` for the system (module doc); pixel accuracy and
    mIoU are pooled ratios of the ``seg_counts`` class counts."""
    pooled = ({"feature_key": COUNTS_KEY, "statistic": statistic, "estimator": "pooled_ratio"}
              if statistic else {})
    return MetricInfo(name, base.higher_is_better, base.unit, f"{base.description}, on a segmenter's map",
                      display_name=display_name, scope="item", features=(DEFAULT_SEGMENTER,),
                      interval=interval, column_order=order, missing="unavailable", family=family, **pooled)


_NARRATIVES = "seeded percentile bootstrap of the mean over narratives, resampling images"
SEG_TRACE_ACCURACY = Metric(
    _info(label_canvas.TRACE_CANVAS_INFO, "seg_trace_accuracy", "Seg. trace acc.", 65, _NARRATIVES,
          family="trace adherence"),
    _seg_trace, params=dict(_PARAMS), needs=_NEEDS, space_param="segmenter")
SEG_PIXEL_ACCURACY = Metric(
    _info(label_canvas.PIXEL_ACCURACY_INFO, "seg_pixel_accuracy", "Seg. pixel acc.", 66,
          "seeded percentile bootstrap over images of the pooled ratio", statistic="pixel_accuracy"),
    _seg_pixels("seg_pixel_accuracy", "canvas_pixel_accuracy"), params=dict(_PARAMS), needs=_NEEDS,
    space_param="segmenter")
SEG_MIOU = Metric(
    _info(label_canvas.MIOU_INFO, "seg_miou", "Seg. mIoU", 67,
          "seeded percentile bootstrap over images of the pooled mIoU", statistic="miou"),
    _seg_pixels("seg_miou", "canvas_miou"), params=dict(_PARAMS), needs=_NEEDS, space_param="segmenter")
TRACE_HIT_RATE = Metric(
    MetricInfo("trace_hit_rate", True, trace_hit.INFO.unit, trace_hit.INFO.description,
               display_name="Trace hit rate", scope="item", features=(DEFAULT_SEGMENTER,),
               interval=_NARRATIVES, column_order=64, missing="unavailable", family="trace adherence"),
    _trace_hit, params=dict(_PARAMS), needs=_NEEDS, space_param="segmenter")
REGISTERED_INFO = {m.info.name: m.info
                   for m in (SEG_TRACE_ACCURACY, SEG_PIXEL_ACCURACY, SEG_MIOU, TRACE_HIT_RATE)}

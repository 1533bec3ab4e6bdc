"""Label-canvas metrics of the systems that draw a canvas (TReCS): trace-canvas accuracy, and
pixel accuracy / mIoU of the canvas against the gold segmentation.

Systems without canvases get none of these (not applicable, not a failure). The numbers are
:mod:`trecs_eval.metrics.label_canvas`'s; CIs are seeded bootstraps over narratives / images.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trecs_eval.metrics import label_canvas
from trecs_eval.metrics.bootstrap import DEFAULT_N_RESAMPLES
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricOutput, MetricResult

_PARAMS = {"n_resamples": DEFAULT_N_RESAMPLES}
_NEEDS = frozenset({"canvas", "items"})
COUNTS_KEY = "canvas_counts"  # features/{system}.npz: per-item class counts of the pooled ratios


def _trace_canvas(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
    assert inputs.canvases is not None  # the measure stage skips systems without canvases
    return label_canvas.trace_canvas_accuracy(inputs.items, inputs.canvases, seed=inputs.seed, **params)


def _segmentation(name: str) -> Any:
    def compute(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricOutput:
        assert inputs.canvases is not None
        found = label_canvas.segmentation_metrics(inputs.items, inputs.canvases, seed=inputs.seed, **params)
        counts = label_canvas.item_class_counts(inputs.items, inputs.canvases)
        return MetricOutput(next(r for r in found if r.name == name), arrays={COUNTS_KEY: counts})

    compute.__name__ = f"compute_{name}"
    return compute


def _info(base: MetricInfo, display_name: str, order: int, interval: str, *, family: str = "layout accuracy",
          statistic: str = "") -> MetricInfo:
    """Trace-canvas accuracy: a per-item mean over the scored narratives (a narrative without a
    gold-tagged word with trace points has no value: excluded, counted). Pixel accuracy and mIoU:
    pooled ratios of the ``canvas_counts`` class counts (an item without a gold map: excluded)."""
    pooled = ({"feature_key": COUNTS_KEY, "statistic": statistic, "estimator": "pooled_ratio"}
              if statistic else {})
    return MetricInfo(base.name, base.higher_is_better, base.unit, base.description,
                      display_name=display_name, scope="item", interval=interval, column_order=order,
                      missing="exclude", family=family, **pooled)


TRACE_CANVAS_ACCURACY = Metric(
    _info(label_canvas.TRACE_CANVAS_INFO, "Trace-canvas acc.", 60,
          "seeded percentile bootstrap of the mean over narratives, resampling images",
          family="trace adherence"),
    _trace_canvas, params=dict(_PARAMS), needs=_NEEDS)
CANVAS_PIXEL_ACCURACY = Metric(
    _info(label_canvas.PIXEL_ACCURACY_INFO, "Canvas pixel acc.", 61,
          "seeded percentile bootstrap over images of the pooled ratio", statistic="pixel_accuracy"),
    _segmentation("canvas_pixel_accuracy"), params=dict(_PARAMS), needs=_NEEDS)
CANVAS_MIOU = Metric(
    _info(label_canvas.MIOU_INFO, "Canvas mIoU", 62,
          "seeded percentile bootstrap over images of the pooled mIoU", statistic="miou"),
    _segmentation("canvas_miou"), params=dict(_PARAMS), needs=_NEEDS)

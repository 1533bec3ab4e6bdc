"""Canvas and segmenter metrics: the point lookup floors, intervals resample images (all narratives of
an image together), and a segmenter that labels nothing makes the metric unavailable, not a number."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.trecs_scene import make_narrative
from trecs_eval.data.coco_stuff import NAME_TO_ID, write_label_map
from trecs_eval.data.evalset import EvalItem
from trecs_eval.metrics.bootstrap import bootstrap_indices, bootstrap_mean_ci, percentile_ci
from trecs_eval.metrics.label_canvas import (
    point_pixels,
    segmentation_metrics,
    trace_canvas_accuracy,
)
from trecs_eval.metrics.types import MetricInputs
from trecs_eval.stages import segmentation

EXACT = 1e-12
N_RESAMPLES = 300
SKY, GRASS = NAME_TO_ID["sky-other"], NAME_TO_ID["grass"]


def test_point_lookup_floors_where_rounding_would_move_to_the_next_pixel() -> None:
    points = np.array([[0.45, 0.45], [0.74, 0.26], [0.5, 0.5]])
    rows, cols = point_pixels(points, (2, 4))
    # pixel (row, col) = (floor(y H), floor(x W)): 0.45 * 4 = 1.8 -> column 1, 0.45 * 2 = 0.9 -> row 0
    assert cols.tolist() == [1, 2, 2] and rows.tolist() == [0, 0, 1]


def _two_narratives_per_image(n_images: int, seed: int) -> tuple[list[EvalItem], dict[str, np.ndarray]]:
    """Each image's two narratives trace "sky" into the sky half or both into the grass half."""
    rng = np.random.default_rng(seed)
    canvas = np.full((10, 10), GRASS, dtype=np.uint8)
    canvas[:5] = SKY
    items, canvases = [], {}
    for image in range(n_images):
        y = 0.2 if rng.random() < 0.6 else 0.8
        for annotator in (1, 2):
            narrative = make_narrative(f"{100 + image}_{annotator}", [("sky", [(0.5, y), (0.3, y)])])
            items.append(EvalItem(narrative, gold_tags=("sky-other",)))
            canvases[narrative.item_id] = canvas
    return items, canvases


def test_trace_canvas_interval_resamples_images() -> None:
    items, canvases = _two_narratives_per_image(30, seed=0)
    result = trace_canvas_accuracy(items, canvases, seed=3, n_resamples=N_RESAMPLES)
    values = [result.per_sample[it.item_id] for it in items]
    images = [it.narrative.image_id for it in items]
    _, low, high = bootstrap_mean_ci(values, N_RESAMPLES, seed=3, clusters=images)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=EXACT)
    _, naive_low, naive_high = bootstrap_mean_ci(values, N_RESAMPLES, seed=3)
    assert high - low > 1.2 * (naive_high - naive_low)  # copies of one image are not independent
    assert result.params["n_clusters"] == 30


def test_pooled_pixel_accuracy_interval_resamples_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    items, canvases, counts_by_image = [], {}, []
    for image in range(12):
        gold = np.where(rng.random((6, 8)) < 0.5, SKY, GRASS).astype(np.uint8)
        gold_path = write_label_map(tmp_path / f"gold{image}.png", gold)
        correct, labelled = 0, 0
        for annotator in (1, 2):
            canvas = np.where(rng.random(gold.shape) < 0.3 + 0.05 * image, gold, 7).astype(np.uint8)
            narrative = make_narrative(f"{image + 1}_{annotator}", [("sky", [(0.5, 0.5)])])
            items.append(EvalItem(narrative, gold_segmentation=gold_path))
            canvases[narrative.item_id] = canvas
            correct, labelled = correct + int(np.sum(canvas == gold)), labelled + gold.size
        counts_by_image.append((correct, labelled))
    result = next(r for r in segmentation_metrics(items, canvases, seed=2, n_resamples=N_RESAMPLES)
                  if r.name == "canvas_pixel_accuracy")
    tp, total = (np.array(c, np.float64) for c in zip(*counts_by_image, strict=True))
    replicates = [tp[row].sum() / total[row].sum() for row in bootstrap_indices(12, N_RESAMPLES, seed=2)]
    assert (result.ci_low, result.ci_high) == pytest.approx(percentile_ci(replicates), abs=EXACT)
    assert result.value == pytest.approx(tp.sum() / total.sum(), abs=EXACT)
    assert result.params["n_clusters"] == 12


@pytest.mark.parametrize("name", ["seg_trace_accuracy", "seg_pixel_accuracy", "seg_miou", "trace_hit_rate"])
def test_a_map_without_any_label_makes_segmenter_metrics_unavailable(name: str) -> None:
    maps = [np.full((4, 4), SKY, np.uint8), np.zeros((4, 4), np.uint8)]  # the second image: nothing
    narratives = tuple(make_narrative(f"{i + 1}_1", [("sky", [(0.5, 0.5)])]) for i in range(2))
    inputs = MetricInputs(system="s", item_ids=tuple(n.item_id for n in narratives), paths=(), seed=0,
                          features={"toyworld_oracle": SimpleNamespace(maps=maps, label_space=None)},
                          identities={"toyworld_oracle": {}}, narratives=narratives,
                          items=tuple(EvalItem(n, gold_tags=("sky-other",)) for n in narratives))
    metric = next(m for m in (segmentation.SEG_TRACE_ACCURACY, segmentation.SEG_PIXEL_ACCURACY,
                              segmentation.SEG_MIOU, segmentation.TRACE_HIT_RATE) if m.info.name == name)
    result = metric.compute(inputs, {"segmenter": "toyworld_oracle", "n_resamples": 10})
    assert result.status == "unavailable" and np.isnan(result.value)
    assert result.params["unsegmented_images"] == 1 and "1 of 2 images" in result.warnings[0]

"""Label-canvas accuracy: how well a system's label canvas follows the words, the trace and the gold map.

Any system that returns a canvas (H×W uint8 COCO-Stuff ids) can be scored.

* **Trace-canvas accuracy** (``trace_canvas_accuracy``). For word ``w`` with a gold tag ``g_w``
  (a COCO-Stuff label name) and trace points ``P_w`` (its utterance's points,
  :func:`points_for_words`), ``acc_w = (1/|P_w|) Σ_{p ∈ P_w} 1[canvas(p) = id(g_w)]`` where a
  normalized point (x, y) falls in pixel ``(min(⌊y·H⌋, H-1), min(⌊x·W⌋, W-1))``. Words
  without points or without a label tag are not scored. Per narrative: the mean of its
  ``acc_w``; overall: the mean over narratives, with a bootstrap CI that resamples images
  (narratives of one image are not independent; ``params['n_clusters']``). ``params['by_class']``:
  the mean ``acc_w`` per gold tag (:mod:`trecs_eval.metrics.by_class`), words as units.
* **Canvas vs gold segmentation** (``canvas_pixel_accuracy``, ``canvas_miou``), at the gold
  map's resolution (the canvas is resized nearest if needed); gold pixels 0/255 are ignored.
  Over the set: ``TP_c``, ``G_c`` (gold pixels of c), ``P_c`` (predicted pixels of c on valid
  gold pixels) summed over images; pixel accuracy ``Σ TP_c / Σ G_c``;
  ``IoU_c = TP_c / (G_c + P_c - TP_c)``; mIoU = mean IoU_c over the labels with
  ``G_c + P_c > 0``. Per narrative: the same on its canvas alone. CIs resample images: the
  counts of all narratives of an image enter a resample together (``params['n_clusters']``).
* **Tag accuracy** (``tag_accuracy``, ``tag_macro_f1``): delegated to
  :mod:`trecs_eval.metrics.tag_accuracy`; CIs resample narratives.

Example: a canvas that is all ``sky-other`` scores trace-canvas accuracy 1 on a narrative
whose every tagged word is ``sky-other``, and 0 if they are all ``grass``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from trecs_eval.data.coco_stuff import NAME_TO_ID, read_label_map
from trecs_eval.data.evalset import EvalItem, read_gold_segmentation
from trecs_eval.data.narratives import Narrative, points_for_words
from trecs_eval.errors import InputError, TrecsEvalError
from trecs_eval.metrics import tag_accuracy as tag_metrics
from trecs_eval.metrics.bootstrap import DEFAULT_N_RESAMPLES, bootstrap_mean_ci, bootstrap_statistic_ci
from trecs_eval.metrics.by_class import BY_CLASS_PARAM, class_breakdown
from trecs_eval.metrics.intervals import cluster_codes, containment_warning
from trecs_eval.metrics.types import MetricInfo, MetricResult

TRACE_CANVAS_INFO = MetricInfo("trace_canvas_accuracy", True, "fraction",
                               "fraction of a tagged word's trace points whose canvas label is its gold tag")
PIXEL_ACCURACY_INFO = MetricInfo("canvas_pixel_accuracy", True, "fraction",
                                 "canvas vs gold map, labelled pixels")
MIOU_INFO = MetricInfo("canvas_miou", True, "fraction", "mean IoU of canvas vs gold map over present labels")
TAG_ACCURACY_INFO = MetricInfo("tag_accuracy", True, "fraction", "word accuracy of predicted vs gold tags")
TAG_MACRO_F1_INFO = MetricInfo("tag_macro_f1", True, "fraction", "macro-F1 of predicted vs gold tags")
N_LABEL_IDS = 256


def point_pixels(points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of normalized (x, y) points on an H×W map (clipped into the map)."""
    height, width = shape
    pts = np.clip(np.asarray(points, dtype=np.float64).reshape(-1, 2), 0.0, 1.0)
    cols = np.minimum(np.floor(pts[:, 0] * width).astype(np.int64), width - 1)
    rows = np.minimum(np.floor(pts[:, 1] * height).astype(np.int64), height - 1)
    return rows, cols


def word_trace_accuracies(narrative: Narrative, gold_tags: Sequence[str],
                          canvas: np.ndarray) -> list[float | None]:
    """Per word: ``acc_w`` of the module doc, or None when the word is not scored."""
    words = narrative.words
    if len(gold_tags) != len(words):
        raise InputError(f"{len(gold_tags)} gold tags for {len(words)} words", field="gold_tags",
                         hint=f"item {narrative.item_id}")
    out: list[float | None] = []
    for tag, points in zip(gold_tags, points_for_words(narrative, words), strict=True):
        if tag not in NAME_TO_ID or len(points) == 0:
            out.append(None)
            continue
        rows, cols = point_pixels(points, canvas.shape)
        out.append(float(np.mean(canvas[rows, cols] == NAME_TO_ID[tag])))
    return out


def _failed(info: MetricInfo, reason: str, seed: int) -> MetricResult:
    return MetricResult(info.name, math.nan, info.higher_is_better, 0, seed=seed, status="failed",
                        warnings=(reason,))


Canvases = Mapping[str, np.ndarray | str | os.PathLike[str]]
"""item id -> H×W uint8 label canvas, or the path of its PNG (as the run directory stores it)."""


def canvas_of(canvases: Canvases, item: EvalItem) -> np.ndarray:
    if item.item_id not in canvases:
        raise TrecsEvalError(f"no canvas for item {item.item_id}; every scored item needs one")
    value = canvases[item.item_id]
    canvas = read_label_map(value) if isinstance(value, str | os.PathLike) else np.asarray(value)
    if canvas.ndim != 2:
        raise TrecsEvalError(f"canvas of item {item.item_id} has shape {canvas.shape}; "
                             "expected H×W label ids")
    return canvas


def trace_canvas_accuracy(items: Sequence[EvalItem], canvases: Canvases, *, seed: int = 0,
                          n_resamples: int = DEFAULT_N_RESAMPLES) -> MetricResult:
    """Overall trace-canvas accuracy (mean over narratives) with a bootstrap CI; per-narrative values."""
    info = TRACE_CANVAS_INFO
    per_sample: dict[str, float] = {}
    images: list[str] = []
    tags: list[str] = []  # per scored word: its gold tag, acc_w and image (the class breakdown)
    word_scores: list[float] = []
    word_images: list[str] = []
    unscored = 0
    for item in items:
        if item.gold_tags is None:
            unscored += 1
            continue
        accuracies = word_trace_accuracies(item.narrative, item.gold_tags, canvas_of(canvases, item))
        scores = [s for s in accuracies if s is not None]
        for tag, score in zip(item.gold_tags, accuracies, strict=True):
            if score is not None:
                tags.append(tag)
                word_scores.append(score)
                word_images.append(item.narrative.image_id)
        if scores:
            per_sample[item.item_id] = float(np.mean(scores))
            images.append(item.narrative.image_id)
        else:
            unscored += 1
    warnings = ((f"{unscored} of {len(items)} narratives have no tagged word with trace points",)
                if unscored else ())
    if not per_sample:
        return _failed(info, "no narrative has a gold-tagged word with trace points", seed)
    mean, low, high = bootstrap_mean_ci(list(per_sample.values()), n_resamples=n_resamples, seed=seed,
                                        clusters=images)
    warnings += containment_warning(info.name, mean, low, high)
    return MetricResult(info.name, mean, True, len(per_sample), low, high, seed=seed, warnings=warnings,
                        params={"n_resamples": n_resamples, "n_clusters": len(set(images)),
                                BY_CLASS_PARAM: class_breakdown(tags, word_scores, word_images,
                                                                n_resamples=n_resamples, seed=seed)},
                        per_sample=per_sample)


def class_counts(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(3, 256) int64: TP_c, G_c, P_c over gold pixels that are labelled (not 0/255)."""
    gold = np.asarray(gold, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if gold.shape != pred.shape:
        pred = _resize_nearest(pred, gold.shape)
    valid = (gold != 0) & (gold != 255)
    g, p = gold[valid], pred[valid]
    return np.stack([np.bincount(g[g == p], minlength=N_LABEL_IDS), np.bincount(g, minlength=N_LABEL_IDS),
                     np.bincount(p, minlength=N_LABEL_IDS)])


def _resize_nearest(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    src_h, src_w = labels.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * src_h / shape[0]).astype(np.int64), src_h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * src_w / shape[1]).astype(np.int64), src_w - 1)
    return labels[np.ix_(rows, cols)]


def item_class_counts(items: Sequence[EvalItem], canvases: Canvases,
                      label_lut: np.ndarray | None = None) -> np.ndarray:
    """(n_items, 3, 256) int32 :func:`class_counts` per item, in ``items`` order: what a pooled
    ratio is summed from (``compare`` tests it per image). An item without a gold map has no
    value: its row is zeros (no gold pixel), which the pooled ratio leaves out."""
    lut = np.arange(N_LABEL_IDS) if label_lut is None else np.asarray(label_lut)
    out = np.zeros((len(items), 3, N_LABEL_IDS), dtype=np.int32)
    for row, item in enumerate(items):
        if item.gold_segmentation is not None:
            out[row] = class_counts(lut[read_gold_segmentation(item)], lut[canvas_of(canvases, item)])
    return out


def pixel_accuracy_from_counts(counts: np.ndarray) -> float:
    """``Σ TP_c / Σ G_c`` (NaN when there is no labelled gold pixel)."""
    total = counts[1].sum()
    return float(counts[0].sum() / total) if total else math.nan


def miou_from_counts(counts: np.ndarray) -> float:
    """Mean over labels 1..254 with ``G_c + P_c > 0`` of ``TP_c / (G_c + P_c - TP_c)`` (0 is no class)."""
    tp, g, p = (c[1:255].astype(np.float64) for c in counts)
    present = (g + p) > 0
    if not present.any():
        return math.nan
    return float(np.mean(tp[present] / (g[present] + p[present] - tp[present])))


def segmentation_metrics(items: Sequence[EvalItem], canvases: Canvases, *, seed: int = 0,
                         n_resamples: int = DEFAULT_N_RESAMPLES, label_lut: np.ndarray | None = None
                         ) -> list[MetricResult]:
    """``canvas_pixel_accuracy`` and ``canvas_miou`` over the items that have a gold segmentation.

    ``label_lut`` (256,) maps both the gold and the predicted ids before counting (a segmenter's
    merged classes: its canonical label), so a merged class is not a miss."""
    scored = [item for item in items if item.gold_segmentation is not None]
    if not scored:
        reason = "no item has a gold segmentation map"
        return [_failed(PIXEL_ACCURACY_INFO, reason, seed), _failed(MIOU_INFO, reason, seed)]
    lut = np.arange(N_LABEL_IDS) if label_lut is None else np.asarray(label_lut)
    counts = np.stack([class_counts(lut[read_gold_segmentation(item)], lut[canvas_of(canvases, item)])
                       for item in scored])
    if np.any(counts[:, 1].sum(axis=1) == 0):
        bad = scored[int(np.flatnonzero(counts[:, 1].sum(axis=1) == 0)[0])]
        raise InputError("gold segmentation has no labelled pixel", str(bad.gold_segmentation))
    unscored = len(items) - len(scored)
    warnings = (f"{unscored} of {len(items)} items have no gold map",) if unscored else ()
    by_image = counts_per_image(scored, counts)
    results = []
    for info, fn in ((PIXEL_ACCURACY_INFO, pixel_accuracy_from_counts), (MIOU_INFO, miou_from_counts)):
        low, high = bootstrap_statistic_ci(len(by_image), lambda idx, fn=fn: fn(by_image[idx].sum(axis=0)),
                                           n_resamples=n_resamples, seed=seed)
        per_sample = {item.item_id: fn(c) for item, c in zip(scored, counts, strict=True)}
        value = fn(counts.sum(axis=0))
        results.append(MetricResult(info.name, value, True, len(scored), low, high, seed=seed,
                                    warnings=warnings + containment_warning(info.name, value, low, high),
                                    params={"n_resamples": n_resamples, "n_clusters": len(by_image)},
                                    per_sample=per_sample))
    return results


def counts_per_image(items: Sequence[EvalItem], counts: np.ndarray) -> np.ndarray:
    """(C, 3, 256): the items' counts summed per image, images in order of first appearance.

    The pooled ratios' bootstrap resamples these rows: narratives of one image (each with its own
    canvas) are not independent, so an image and all its narratives enter a resample together.
    """
    codes, n_images = cluster_codes([item.narrative.image_id for item in items], len(items))
    by_image = np.zeros((n_images, *counts.shape[1:]), dtype=counts.dtype)
    np.add.at(by_image, codes, counts)
    return by_image


def tag_metrics_results(items: Sequence[EvalItem], predicted: Mapping[str, Sequence[str]], *, seed: int = 0,
                        n_resamples: int = DEFAULT_N_RESAMPLES) -> list[MetricResult]:
    """``tag_accuracy`` and ``tag_macro_f1`` of predicted vs gold tags, CIs over narratives."""
    scored = [item for item in items if item.gold_tags is not None]
    if not scored:
        reason = "no item has gold tags"
        return [_failed(TAG_ACCURACY_INFO, reason, seed), _failed(TAG_MACRO_F1_INFO, reason, seed)]
    missing = [item.item_id for item in scored if item.item_id not in predicted]
    if missing:
        raise TrecsEvalError(f"no predicted tags for {len(missing)} items (first: {missing[0]})")
    gold = [list(item.gold_tags or ()) for item in scored]
    pred = [list(predicted[item.item_id]) for item in scored]
    summary = tag_metrics.tag_accuracy(gold, pred)
    labels = sorted({t for seq in gold + pred for t in seq})
    index = {t: i for i, t in enumerate(labels)}
    # Per narrative (row) and label (column): true positives, gold count, predicted count.
    tp, g, p = (np.zeros((len(scored), len(labels))) for _ in range(3))
    for r, (gs, ps) in enumerate(zip(gold, pred, strict=True)):
        for a, b in zip(gs, ps, strict=True):
            g[r, index[a]] += 1
            p[r, index[b]] += 1
            tp[r, index[a]] += a == b

    def accuracy(idx: np.ndarray) -> float:
        return float(tp[idx].sum() / g[idx].sum())

    def macro(idx: np.ndarray) -> float:
        t, gg, pp = tp[idx].sum(0), g[idx].sum(0), p[idx].sum(0)
        present = (gg + pp) > 0
        return float(np.mean(2 * t[present] / (gg[present] + pp[present])))  # F1 = 2TP / (G + P)

    results = []
    per_label = {s.label: {"f1": s.f1, "precision": s.precision, "recall": s.recall, "support": s.support}
                 for s in summary.per_label}
    for info, value, stat in ((TAG_ACCURACY_INFO, summary.word_accuracy, accuracy),
                              (TAG_MACRO_F1_INFO, summary.macro_f1, macro)):
        low, high = bootstrap_statistic_ci(len(scored), stat, n_resamples=n_resamples, seed=seed)
        per_sample = {item.item_id: stat(np.array([r])) for r, item in enumerate(scored)}
        params: dict[str, object] = {"n_resamples": n_resamples, "n_words": summary.n_words}
        if info is TAG_MACRO_F1_INFO:
            params["per_label"] = per_label  # the per-label breakdown, as tag_accuracy.py computes it
        results.append(MetricResult(info.name, value, True, len(scored), low, high, seed=seed, params=params,
                                    warnings=containment_warning(info.name, value, low, high),
                                    per_sample=per_sample))
    return results


def label_canvas_metrics(items: Sequence[EvalItem], canvases: Canvases,
                         predicted_tags: Mapping[str, Sequence[str]] | None = None, *, seed: int = 0,
                         n_resamples: int = DEFAULT_N_RESAMPLES) -> list[MetricResult]:
    """All label-canvas metrics: trace-canvas accuracy, pixel accuracy, mIoU, and (given predictions) tags."""
    results = [trace_canvas_accuracy(items, canvases, seed=seed, n_resamples=n_resamples),
               *segmentation_metrics(items, canvases, seed=seed, n_resamples=n_resamples)]
    if predicted_tags is not None:
        results.extend(tag_metrics_results(items, predicted_tags, seed=seed, n_resamples=n_resamples))
    return results

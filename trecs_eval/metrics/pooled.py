"""Pooled ratios of per-item class counts (pixel accuracy, mIoU) and their influence values.

A pooled ratio is a smooth function of the per-item count means ``S = (1/n) sum_i s_i`` (``s_i``:
the (3, 256) ``TP_c, G_c, P_c`` of item i, :func:`trecs_eval.metrics.label_canvas.class_counts`),
so the delta method applies at the level the sampling happens (Cochran's ratio estimator):
``IF_i = grad f(S) . (s_i - S)``, summed per image by
:func:`trecs_eval.metrics.intervals.paired_delta_test` (cluster = image):

* pixel accuracy ``r = sum_c TP_c / sum_c G_c``: ``IF_i = (tp_i - r g_i) / mean(g)`` with
  ``tp_i``, ``g_i`` item i's totals over classes;
* mIoU ``(1/K) sum_{c in K} T_c / U_c`` with ``U_c = G_c + P_c - T_c`` and K the labels present
  in the set: ``IF_i = (1/K) sum_c [(t_ic - T_c)(U_c + T_c) - (g_ic - G_c + p_ic - P_c) T_c] / U_c^2``.

The value is the one the run reports (:func:`~trecs_eval.metrics.label_canvas.pixel_accuracy_from_counts`,
:func:`~trecs_eval.metrics.label_canvas.miou_from_counts` on the summed counts); items with no gold
pixel carry no value and must be left out by the caller (:func:`has_value`).
"""

from __future__ import annotations

import numpy as np

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.intervals import Influence
from trecs_eval.metrics.label_canvas import miou_from_counts, pixel_accuracy_from_counts

POOLED_STATISTICS = ("pixel_accuracy", "miou")


def has_value(counts: np.ndarray) -> np.ndarray:
    """(n,) bool: the item has at least one labelled gold pixel (else it has no value)."""
    return np.asarray(counts)[:, 1].sum(axis=1) > 0


def pooled_value(counts: np.ndarray, statistic: str) -> float:
    """The pooled ratio of (n, 3, 256) per-item counts, as the run computes it."""
    totals = np.asarray(counts, dtype=np.float64).sum(axis=0)  # counts, or weighted counts
    if statistic == "pixel_accuracy":
        return pixel_accuracy_from_counts(totals)
    if statistic == "miou":
        return miou_from_counts(totals)
    raise TrecsEvalError(f"unknown pooled statistic {statistic!r}; available: {', '.join(POOLED_STATISTICS)}")


def pooled_influence(counts: np.ndarray, statistic: str) -> Influence:
    """The pooled ratio of ``counts`` (n, 3, 256) and its centred influence values per item."""
    s = np.asarray(counts, dtype=np.float64)
    value = pooled_value(counts, statistic)
    mean = s.mean(axis=0)
    if statistic == "pixel_accuracy":
        tp, g = s[:, 0].sum(axis=1), s[:, 1].sum(axis=1)
        influence = (tp - value * g) / g.mean()
        return Influence(value, influence - influence.mean(), None)
    labels = slice(1, 255)  # 0 and 255 are no class (miou_from_counts)
    t_bar, g_bar, p_bar = mean[0, labels], mean[1, labels], mean[2, labels]
    union = g_bar + p_bar - t_bar
    present = (g_bar + p_bar) > 0
    k = int(present.sum())
    t, g, p = (s[:, row, labels][:, present] - m[present]
               for row, m in ((0, t_bar), (1, g_bar), (2, p_bar)))
    u, tb = union[present], t_bar[present]
    influence = ((t * (u + tb) - (g + p) * tb) / u**2).sum(axis=1) / k
    return Influence(value, influence - influence.mean(), None)

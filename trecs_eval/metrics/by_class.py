"""Per-class breakdown of a per-unit score: which things does a system misplace?

Units are utterances, spans or words, each with a class label (a COCO-Stuff name), a value and
the image it belongs to. Per class: ``n`` units, the number of images, the mean value and a
seeded 95 % percentile bootstrap interval of the mean that resamples whole images (units of one
image are not independent); a class seen in one image only gets no interval (NaN), never a
zero-width one. Only the ``top`` classes with the most units are kept (ties: by name), so a
results file stays small on a 182-class dataset.

>>> found = class_breakdown(["dog", "dog", "sky"], [1.0, 0.0, 1.0], ["a", "b", "a"], n_resamples=50)
>>> [(k, v["n"], v["mean"]) for k, v in found.items()]
[('dog', 2, 0.5), ('sky', 1, 1.0)]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, DEFAULT_N_RESAMPLES, bootstrap_mean_ci

DEFAULT_TOP_CLASSES = 20
BY_CLASS_PARAM = "by_class"  # the MetricResult.params key the reports read


def class_breakdown(labels: Sequence[str], values: Sequence[float] | np.ndarray, clusters: Sequence[object],
                    top: int = DEFAULT_TOP_CLASSES, n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = 0,
                    alpha: float = DEFAULT_ALPHA) -> dict[str, dict[str, Any]]:
    """``{label: {n, n_images, mean, ci_low, ci_high}}`` for the ``top`` most frequent non-empty
    labels, most frequent first; NaN bounds (None in JSON) for a class of one image."""
    x = np.asarray(values, dtype=np.float64)
    if not (len(labels) == x.size == len(clusters)):
        raise ValueError(f"{len(labels)} labels, {x.size} values and {len(clusters)} clusters must align")
    counts = Counter(lab for lab in labels if lab)
    chosen = sorted(counts, key=lambda lab: (-counts[lab], lab))[:top]
    out: dict[str, dict[str, Any]] = {}
    for label in chosen:
        rows = [i for i, lab in enumerate(labels) if lab == label]
        images = [str(clusters[i]) for i in rows]
        n_images = len(set(images))
        if n_images > 1:
            mean, low, high = bootstrap_mean_ci(x[rows], n_resamples=n_resamples, seed=seed, alpha=alpha,
                                                clusters=images)
        else:
            mean, low, high = float(x[rows].mean()), math.nan, math.nan
        out[label] = {"n": len(rows), "n_images": n_images, "mean": mean,
                      "ci_low": None if math.isnan(low) else low,
                      "ci_high": None if math.isnan(high) else high}
    return out

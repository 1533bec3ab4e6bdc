"""The image region a stretch of mouse trace points at: one box rule for every consumer.

The compose step places retrieved masks on it, GLIGEN gets it as a grounding box, and the
trace-local CLIP metric crops it from a generated image. Rule, for (K, 2) (x, y) points:

1. **Grow.** The bbox of the points (= the bbox of their convex hull), enlarged about its centre
   by ``TRACE_BOX_GROWTH`` = 1.4: a scribble covers an object's core, not its outline (1.4 ≈
   1/0.7, a core of 70 % of the object's radius; on toyworld val, growths 1.0 / 1.2 / 1.4 / 1.6
   gave oracle trace-canvas accuracy 0.76 / 0.82 / 0.84 / 0.84).
2. **Clip** (:func:`trace_box`): points to [0, 1] first (LN traces leave the image a little),
   then the grown box to the image.
3. **Minimum side.** A side shorter than ``min_side`` (default ``MIN_BOX_SIDE`` = 1/16 of the
   image) is widened to it about its centre, then shifted back inside the image: a one-point
   scribble still names a place.

>>> [round(v, 3) for v in trace_box(np.array([[0.2, 0.2], [0.4, 0.3]]))[0]]
[0.16, 0.18, 0.44, 0.32]
"""

from __future__ import annotations

import math

import numpy as np

TRACE_BOX_GROWTH = 1.4
MIN_BOX_SIDE = 1 / 16
# A box edge computed as 0.44 * 100 lands on 44.000000000000007: without this slack ceil() would
# take a pixel the box does not touch. Far below any real fraction of a pixel.
EDGE_SLACK_PX = 1e-6

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1); normalized to [0, 1] where a function says so."""


def grown_trace_box(points: np.ndarray, growth: float = TRACE_BOX_GROWTH) -> Box:
    """(x0, y0, x1, y1): the bbox of (K, 2) (x, y) points enlarged about its centre by ``growth``.
    Works in any units (normalized or pixels); the box is not clipped to the image."""
    (tx0, ty0), (tx1, ty1) = points.min(axis=0), points.max(axis=0)
    half_w, half_h = (tx1 - tx0) * growth / 2, (ty1 - ty0) * growth / 2
    cx, cy = (tx0 + tx1) / 2, (ty0 + ty1) / 2
    return float(cx - half_w), float(cy - half_h), float(cx + half_w), float(cy + half_h)


def trace_box(points: np.ndarray, min_side: float = MIN_BOX_SIDE) -> tuple[Box, bool]:
    """(box, widened): the grown box of normalized points, clipped to [0, 1], each side at least
    ``min_side`` (rules 1-3 of the module doc); ``widened`` says whether rule 3 applied."""
    x0, y0, x1, y1 = grown_trace_box(np.clip(points, 0.0, 1.0))
    widened = False
    lo_hi = []
    for lo, hi in ((x0, x1), (y0, y1)):
        lo, hi = max(lo, 0.0), min(hi, 1.0)
        if hi - lo < min_side:
            widened = True
            centre = min(max((lo + hi) / 2, min_side / 2), 1.0 - min_side / 2)
            lo, hi = centre - min_side / 2, centre + min_side / 2
        lo_hi.append((lo, hi))
    (x0, x1), (y0, y1) = lo_hi
    return (x0, y0, x1, y1), widened


def box_pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), half-open pixel edges of a normalized box on a W×H image: every
    pixel the box touches (edges floored / ceiled), at least one pixel each way, inside the image."""
    left = min(max(math.floor(box[0] * width + EDGE_SLACK_PX), 0), width - 1)
    top = min(max(math.floor(box[1] * height + EDGE_SLACK_PX), 0), height - 1)
    right = max(min(math.ceil(box[2] * width - EDGE_SLACK_PX), width), left + 1)
    bottom = max(min(math.ceil(box[3] * height - EDGE_SLACK_PX), height), top + 1)
    return left, top, right, bottom

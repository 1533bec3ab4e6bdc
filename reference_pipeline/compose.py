"""Compose: a trace-guided label canvas from retrieved masks (TReCS step 3).

Rules (Koh et al. 2021, sec. 3.3, simplified and made explicit):

* **Trace sequences.** A maximal run of consecutive words with the same predicted label is one
  sequence; its points are the union of its words' trace points (normalized x, y).
* **Candidates.** The label's masks in the top-k retrieved bank images; if none holds the label,
  the masks of the best-ranked bank image that does. A label absent from the whole bank is
  skipped (listed in :attr:`Composition.skipped`).
* **Placement rule** (axis-aligned scale + translation). With the mask's bbox (canvas pixels,
  after resizing the bank image to the canvas) of centre ``s`` and size ``(sw, sh)``, and the
  trace points' bbox (= the bbox of their convex hull) of centre ``t`` and size ``(tw, th)``:
  ``scale_x = clip(g·tw / sw, SCALE_MIN, SCALE_MAX)`` (1 when ``g·tw < MIN_TRACE_EXTENT_PX``; same
  for y) and ``dst = (src - s) · scale + t``, with ``g = TRACE_BOX_GROWTH`` (1.4): the grown
  trace box of :mod:`trecs_eval.data.trace_regions`, the one region rule of the project (GLIGEN's
  boxes and the trace-local CLIP metric's crops use it too). Pixels are sampled at centres.
* **Choice.** The candidate whose placed mask has the highest IoU with the rasterized convex hull
  of the points (ties: the earlier candidate, i.e. better-ranked image, then mask order). A
  hull of fewer than 3 non-collinear points is replaced by its bbox.
* **Order.** Stuff sequences are painted first, then things, each in narrative order; later
  paint covers earlier.
* **Fill.** Pixels left uncovered take the top-1 retrieved image's stuff masks at their own
  positions, then (if still uncovered) the label of the nearest covered pixel
  (``scipy.ndimage.distance_transform_edt`` indices). The canvas has no unlabeled pixel
  (checked; an error otherwise). Masks that vanish at the canvas size (a few pixels of a
  large image, nearest-resized) are never candidates.
* **ignore_traces** (ablation): each sequence takes the largest mask of its label in the
  best-ranked retrieved image holding it, at its retrieved position (scale 1). A sequence
  without trace points is placed the same way in the trace-guided mode too.

Outputs: ``labels`` (H×W uint8 COCO-Stuff ids), ``instances`` (H×W int32; placement ``i`` of a
sequence is instance ``i + 1``, fill from the top-1 image is 0) and ``source`` (H×W int32 index
into ``placements``, which the collage synthesizer uses to copy pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from reference_pipeline.bank import MaskBank
from trecs_eval.data.coco_stuff import FIRST_STUFF_ID, NAME_TO_ID
from trecs_eval.data.trace_regions import TRACE_BOX_GROWTH, grown_trace_box
from trecs_eval.errors import TrecsEvalError

SCALE_MIN = 0.25
SCALE_MAX = 4.0
MIN_TRACE_EXTENT_PX = 2.0


@dataclass(frozen=True)
class TraceSequence:
    """Words ``[start, end)`` sharing one label and the union of their trace points ((K, 2) x, y)."""

    label: int
    start: int
    end: int
    points: np.ndarray


@dataclass(frozen=True)
class Placement:
    """A bank mask moved onto the canvas: ``dst = (src - src_center)·scale + dst_center`` per axis (y, x)."""

    mask_index: int
    label: int
    scale: tuple[float, float]
    src_center: tuple[float, float]
    dst_center: tuple[float, float]
    instance_id: int

    def source_coords(self, axis: int, dst_index: np.ndarray) -> np.ndarray:
        """Source pixel index (float, unclipped) of destination pixel centres along axis 0 (y) or 1 (x)."""
        return (dst_index + 0.5 - self.dst_center[axis]) / self.scale[axis] + self.src_center[axis]


@dataclass
class Composition:
    """A label canvas, its instance map, and which placement each pixel came from."""

    labels: np.ndarray
    instances: np.ndarray
    source: np.ndarray
    placements: list[Placement]
    skipped: tuple[int, ...] = ()


def trace_sequences(tags: Sequence[str], points: Sequence[np.ndarray]) -> list[TraceSequence]:
    """Maximal runs of equal tags (tags that are not COCO-Stuff names break runs and are dropped)."""
    if len(tags) != len(points):
        raise TrecsEvalError(f"{len(tags)} tags but trace points for {len(points)} words")
    sequences: list[TraceSequence] = []
    start = 0
    for i in range(1, len(tags) + 1):
        if i == len(tags) or tags[i] != tags[start]:
            if tags[start] in NAME_TO_ID:
                pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in points[start:i]]
                union = np.unique(np.concatenate(pts), axis=0) if pts else np.zeros((0, 2))
                sequences.append(TraceSequence(NAME_TO_ID[tags[start]], start, i, union))
            start = i
    return sequences


Window = tuple[int, int, int, int]
"""(row0, row1, col0, col1), half-open: the part of the canvas a windowed mask covers."""


def hull_window(points: np.ndarray, size: tuple[int, int]) -> tuple[Window, np.ndarray]:
    """Pixels (centres) inside the convex hull of normalized points, within the hull's bbox window.

    A degenerate hull (fewer than 3 non-collinear points) is replaced by the pixels its bbox touches.
    """
    height, width = size
    px = points * np.array([width, height], dtype=np.float64)
    (x0, y0), (x1, y1) = np.floor(px.min(axis=0)), np.floor(px.max(axis=0))
    r0, r1 = int(np.clip(y0, 0, height - 1)), int(np.clip(y1, 0, height - 1)) + 1
    c0, c1 = int(np.clip(x0, 0, width - 1)), int(np.clip(x1, 0, width - 1)) + 1
    try:
        hull = ConvexHull(px)
    except (QhullError, ValueError):
        return (r0, r1, c0, c1), np.ones((r1 - r0, c1 - c0), dtype=bool)
    ys, xs = np.arange(r0, r1) + 0.5, np.arange(c0, c1) + 0.5
    inside = np.ones((r1 - r0, c1 - c0), dtype=bool)
    for a, b, c in hull.equations:  # a·x + b·y + c <= 0 inside every facet
        inside &= (a * xs[None, :] + b * ys[:, None] + c) <= 1e-9
    return (r0, r1, c0, c1), inside


def hull_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`hull_window` pasted on an H×W canvas."""
    return _paste(*hull_window(points, size), size)


def _paste(window: Window, sub: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = np.zeros(size, dtype=bool)
    out[window[0]:window[1], window[2]:window[3]] = sub
    return out


Box = tuple[float, float, float, float]
"""(y0, x0, y1, x1) pixel-edge bbox."""


def _bbox(mask: np.ndarray) -> Box:
    """(y0, x0, y1, x1) pixel-edge bbox of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return float(rows[0]), float(cols[0]), float(rows[-1] + 1), float(cols[-1] + 1)


def place_on_trace(mask: np.ndarray, points: np.ndarray, mask_index: int, label: int,
                   instance_id: int, bbox: Box | None = None) -> Placement:
    """The placement rule of the module doc for one mask (canvas-sized) and normalized trace points."""
    height, width = mask.shape
    y0, x0, y1, x1 = bbox if bbox is not None else _bbox(mask)
    pixels = points * np.array([width, height], dtype=np.float64)
    tx0, ty0, tx1, ty1 = grown_trace_box(pixels, TRACE_BOX_GROWTH)  # module global: tests vary it
    scale = []
    for target, source in ((ty1 - ty0, y1 - y0), (tx1 - tx0, x1 - x0)):
        ratio = float(np.clip(target / source, SCALE_MIN, SCALE_MAX))
        scale.append(1.0 if target < MIN_TRACE_EXTENT_PX else ratio)
    return Placement(mask_index, label, (scale[0], scale[1]), ((y0 + y1) / 2, (x0 + x1) / 2),
                     ((ty0 + ty1) / 2, (tx0 + tx1) / 2), instance_id)


def identity_placement(mask_index: int, label: int, instance_id: int) -> Placement:
    return Placement(mask_index, label, (1.0, 1.0), (0.0, 0.0), (0.0, 0.0), instance_id)


def _dst_range(placement: Placement, axis: int, lo: float, hi: float, limit: int) -> tuple[int, int]:
    """Destination pixels whose source coordinate may fall in [lo, hi) (one pixel of slack each side)."""
    a = (lo - placement.src_center[axis]) * placement.scale[axis] + placement.dst_center[axis] - 0.5
    b = (hi - placement.src_center[axis]) * placement.scale[axis] + placement.dst_center[axis] - 0.5
    return max(0, int(np.floor(a)) - 1), min(limit, int(np.ceil(b)) + 1)


def render_window(mask: np.ndarray, placement: Placement,
                  bbox: Box | None = None) -> tuple[Window, np.ndarray]:
    """The placed mask (nearest sampling at pixel centres), only over the window it can reach."""
    height, width = mask.shape
    y0, x0, y1, x1 = bbox if bbox is not None else _bbox(mask)
    r0, r1 = _dst_range(placement, 0, y0, y1, height)
    c0, c1 = _dst_range(placement, 1, x0, x1, width)
    r0, c0 = min(r0, r1), min(c0, c1)
    rows = np.floor(placement.source_coords(0, np.arange(r0, r1))).astype(np.int64)
    cols = np.floor(placement.source_coords(1, np.arange(c0, c1))).astype(np.int64)
    row_ok, col_ok = (rows >= 0) & (rows < height), (cols >= 0) & (cols < width)
    sub = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    r_idx, c_idx = np.flatnonzero(row_ok), np.flatnonzero(col_ok)
    if r_idx.size and c_idx.size:
        sub[np.ix_(r_idx, c_idx)] = mask[np.ix_(rows[row_ok], cols[col_ok])]
    return (r0, r1, c0, c1), sub


def render(mask: np.ndarray, placement: Placement) -> np.ndarray:
    """The placed mask on a canvas of the mask's size (nearest sampling at pixel centres)."""
    return _paste(*render_window(mask, placement), mask.shape)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / |a ∪ b| of two bool masks (0 when both are empty)."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def windowed_iou(a_window: Window, a: np.ndarray, b_window: Window, b: np.ndarray) -> float:
    """:func:`iou` of two windowed masks without building full canvases."""
    r0, r1 = max(a_window[0], b_window[0]), min(a_window[1], b_window[1])
    c0, c1 = max(a_window[2], b_window[2]), min(a_window[3], b_window[3])
    inter = 0
    if r0 < r1 and c0 < c1:
        sub_a = a[r0 - a_window[0]:r1 - a_window[0], c0 - a_window[2]:c1 - a_window[2]]
        sub_b = b[r0 - b_window[0]:r1 - b_window[0], c0 - b_window[2]:c1 - b_window[2]]
        inter = np.count_nonzero(sub_a & sub_b)
    union = np.count_nonzero(a) + np.count_nonzero(b) - inter
    return inter / union if union else 0.0


def candidates(bank: MaskBank, label: int, ranking: Sequence[int], top_k: int,
               size: tuple[int, int]) -> list[int]:
    """Mask indices of ``label`` in the top-k images, else in the best-ranked image holding it.

    Masks that vanish at the canvas size (a few pixels of a large image) are not candidates.
    """

    def usable(image_index: int) -> list[int]:
        masks = bank.masks_with_label(int(image_index), label)
        return [m for m in masks if bank.mask_bbox(m, size) is not None]

    found = [m for i in ranking[:top_k] for m in usable(i)]
    if found:
        return found
    # The best-ranked image holding the label, found from the label's images (not by walking the
    # ranking: on COCO's 118k-image bank that walk was most of compose's time).
    holders = bank.images_with_label(label)
    if holders.size == 0:
        return []
    unranked = len(bank.images)  # a partial ranking leaves the other images out, as the walk did
    position = np.full(len(bank.images), unranked, dtype=np.int64)
    position[np.asarray(ranking, dtype=np.int64)] = np.arange(len(ranking))
    for i in holders[np.argsort(position[holders], kind="stable")]:
        if position[i] == unranked:
            break
        if position[i] >= top_k:
            found = usable(int(i))
            if found:
                return found
    return []


def choose_placement(bank: MaskBank, cands: Sequence[int], seq: TraceSequence, size: tuple[int, int],
                     instance_id: int, ignore_traces: bool) -> Placement:
    """Best-IoU placement on the trace hull, or (no trace / ablation) the largest mask of the best image."""
    if ignore_traces or len(seq.points) == 0:
        first_image = bank.masks[cands[0]].image_index
        same = [m for m in cands if bank.masks[m].image_index == first_image]
        best = max(same, key=lambda m: (bank.masks[m].area, -m))
        return identity_placement(best, seq.label, instance_id)
    hull_win, hull = hull_window(seq.points, size)
    best_placement, best_iou = None, -1.0
    for m in cands:
        mask, box = bank.mask(m, size), bank.mask_bbox(m, size)
        placement = place_on_trace(mask, seq.points, m, seq.label, instance_id, box)
        score = windowed_iou(*render_window(mask, placement, box), hull_win, hull)
        if score > best_iou:
            best_placement, best_iou = placement, score
    assert best_placement is not None
    return best_placement


def compose(bank: MaskBank, sequences: Sequence[TraceSequence], ranking: Sequence[int], size: tuple[int, int],
            top_k: int = 5, ignore_traces: bool = False) -> Composition:
    """The canvas of the module doc. ``ranking`` is the retriever's full ranking of bank images."""
    if len(ranking) == 0:
        raise TrecsEvalError("retrieval returned no bank image; cannot compose a canvas")
    labels = np.zeros(size, dtype=np.uint8)
    instances = np.zeros(size, dtype=np.int32)
    source = np.full(size, -1, dtype=np.int32)
    placements: list[Placement] = []
    skipped: list[int] = []
    ordered = sorted(enumerate(sequences), key=lambda s: (s[1].label < FIRST_STUFF_ID, s[0]))
    for _, seq in ordered:
        cands = candidates(bank, seq.label, ranking, top_k, size)
        if not cands:
            skipped.append(seq.label)
            continue
        placement = choose_placement(bank, cands, seq, size, len(placements) + 1, ignore_traces)
        m = placement.mask_index
        window, sub = render_window(bank.mask(m, size), placement, bank.mask_bbox(m, size))
        r0, r1, c0, c1 = window
        _paint(sub, placement, len(placements), labels[r0:r1, c0:c1], instances[r0:r1, c0:c1],
               source[r0:r1, c0:c1])
        placements.append(placement)
    _fill(bank, ranking, labels, instances, source, placements)
    return Composition(labels, instances, source, placements, tuple(skipped))


def _paint(mask: np.ndarray, placement: Placement, index: int, labels: np.ndarray, instances: np.ndarray,
           source: np.ndarray) -> None:
    labels[mask] = placement.label
    instances[mask] = placement.instance_id
    source[mask] = index


def _fill(bank: MaskBank, ranking: Sequence[int], labels: np.ndarray, instances: np.ndarray,
          source: np.ndarray, placements: list[Placement]) -> None:
    """Covers every pixel: top-1 image's stuff (then, if the canvas is still empty, its things), then EDT.

    Only if the canvas is still empty (every mask of the top-1 image vanished at this size) do the
    next-ranked images stand in for it.
    """
    size = labels.shape
    for top in ranking:
        top_masks = list(bank.images[int(top)].mask_indices)
        stuff = [m for m in top_masks if bank.masks[m].label >= FIRST_STUFF_ID]
        things = [m for m in top_masks if bank.masks[m].label < FIRST_STUFF_ID]
        for group in (stuff, things):
            if group is things and np.any(source >= 0):
                break
            for m in group:
                uncovered = (source < 0) & bank.mask(m, size)
                if np.any(uncovered):
                    placement = identity_placement(m, bank.masks[m].label, 0)
                    _paint(uncovered, placement, len(placements), labels, instances, source)
                    placements.append(placement)
        if np.any(source >= 0):
            break
    uncovered = source < 0
    if uncovered.all():
        raise TrecsEvalError(f"no bank image gives a mask at canvas size {size}; the canvas is empty")
    if uncovered.any():
        _, (rows, cols) = ndimage.distance_transform_edt(uncovered, return_indices=True)
        labels[uncovered] = labels[rows[uncovered], cols[uncovered]]
        instances[uncovered] = instances[rows[uncovered], cols[uncovered]]
        source[uncovered] = source[rows[uncovered], cols[uncovered]]
    if np.any(source < 0) or np.any(labels == 0):
        raise TrecsEvalError("internal error: the composed canvas has unlabeled pixels")

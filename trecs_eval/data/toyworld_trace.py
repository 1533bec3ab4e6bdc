"""Toyworld mouse traces and timing, and the gold word tags derived from them.

Gold tags follow TReCS (Koh et al. 2021, Sec. 3.1): for each utterance, take the trace points
drawn while it was spoken (:func:`trecs_eval.data.narratives.align_utterances`: closed time
interval, coordinates clipped to [0, 1]), take their convex hull, and give every word of the
utterance the most frequent label among the pixels whose centres lie inside the hull. Ties go to
the smallest label id. A hull of zero area (fewer than 3 distinct points, or collinear ones)
falls back to the labels under the points themselves.
"""

from __future__ import annotations

import numpy as np

from trecs_eval.data.coco_stuff import ID_TO_NAME
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint, align_utterances, tokenize
from trecs_eval.data.toyworld_narrative import SAMPLE_MS, SCRIBBLE_RADIUS, TRACE_LIMIT, TRACE_NOISE_STD, Visit

MS_PER_WORD = (280, 420)  # speaking rate: about 2.4 to 3.6 words per second
PAUSE_MS = (150, 700)  # pause between utterances, while the mouse moves on
OVERSHOOT = (0.005, 0.06)  # how far past the image border an overshoot point lands (normalized)


def _candidates(instances: np.ndarray, visit: Visit, rng: np.random.Generator) -> np.ndarray:
    """Pixel (row, col) pairs the scribble may visit: a thing's core, or stuff near its focus."""
    rows, cols = np.nonzero(instances == visit.instance)
    pix = np.stack([rows, cols], 1).astype(np.float64)
    if visit.thing:
        centre = pix.mean(axis=0)
        radius = 0.7 * np.sqrt(len(pix) / np.pi)  # the core: 70% of the equivalent disc radius
    else:
        centre = np.asarray(visit.focus if visit.focus is not None else pix[int(rng.integers(len(pix)))])
        radius = SCRIBBLE_RADIUS * instances.shape[0]
    near = pix[np.sum((pix - centre) ** 2, axis=1) <= radius**2]
    return near if len(near) >= 10 else pix


def scribble(instances: np.ndarray, visit: Visit, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) normalized x, y points looping over the visited region, with hand jitter.

    Stuff scribbles near the image border sometimes overshoot it (a point just outside [0, 1]),
    as real Localized Narratives traces do.
    """
    size = instances.shape[0]
    pix = _candidates(instances, visit, rng)
    chosen = pix[rng.choice(len(pix), size=n, replace=len(pix) < n)]
    xy = (chosen[:, ::-1] + rng.random((n, 2))) / size
    centre = xy.mean(axis=0)
    xy = xy[np.argsort(np.arctan2(xy[:, 1] - centre[1], xy[:, 0] - centre[0]), kind="stable")]
    xy += rng.normal(0.0, TRACE_NOISE_STD, xy.shape)
    if not visit.thing and rng.random() < 0.5:
        border = np.stack([xy[:, 0], 1 - xy[:, 0], xy[:, 1], 1 - xy[:, 1]], 1)
        k, side = np.unravel_index(int(np.argmin(border)), border.shape)
        if border[k, side] < 0.03:
            push = rng.uniform(*OVERSHOOT)
            xy[k, side // 2] = -push if side % 2 == 0 else 1.0 + push
    return np.clip(xy, -TRACE_LIMIT, 1.0 + TRACE_LIMIT)


def timeline(visits: list[Visit], instances: np.ndarray, rng: np.random.Generator
             ) -> tuple[tuple[TimedUtterance, ...], tuple[tuple[TracePoint, ...], ...]]:
    """Timed utterances and trace segments for a list of visits.

    Utterance k lasts (words × 280–420 ms); points are sampled every SAMPLE_MS ms from its
    start to its end while the mouse scribbles over the visit's region; in the pause after it
    the mouse moves on a straight, jittered line to the next scribble, with times strictly
    between the two utterances (so pause points belong to no utterance).
    """
    spans, scribbles = [], []
    t = int(rng.integers(300, 1200))
    for visit in visits:
        duration = max(1, len(tokenize(visit.text))) * int(rng.integers(*MS_PER_WORD))
        times = np.arange(t, t + duration + 1, SAMPLE_MS)
        spans.append((t, t + duration))
        scribbles.append((times, scribble(instances, visit, len(times), rng)))
        t += duration + int(rng.integers(*PAUSE_MS))
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    for k, (times, xy) in enumerate(scribbles):
        pieces.append((times, xy))
        if k + 1 < len(scribbles):
            nxt_t, nxt_xy = scribbles[k + 1]
            move_t = np.arange(times[-1] + SAMPLE_MS, nxt_t[0], SAMPLE_MS)
            frac = ((move_t - times[-1]) / (nxt_t[0] - times[-1]))[:, None]
            move = xy[-1] * (1 - frac) + nxt_xy[0] * frac + rng.normal(0, TRACE_NOISE_STD, (len(move_t), 2))
            pieces.append((move_t, np.clip(move, -TRACE_LIMIT, 1 + TRACE_LIMIT)))
    # The mouse is lifted in a few pauses: the trace is split into segments there.
    cuts = {2 * int(k) + 1 for k in rng.choice(max(1, len(visits) - 1), size=int(rng.integers(0, 3)))}
    segments: list[list[TracePoint]] = [[]]
    for k, (times, xy) in enumerate(pieces):
        if k in cuts and segments[-1]:
            segments.append([])
        segments[-1].extend(TracePoint(round(float(x), 4), round(float(y), 4), int(ms) / 1000)
                            for (x, y), ms in zip(xy, times, strict=True))
    timed = tuple(TimedUtterance(v.text, a / 1000, b / 1000) for v, (a, b) in zip(visits, spans, strict=True))
    return timed, tuple(tuple(s) for s in segments if s)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of the 2-D cross product a × b (row-wise)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _labels_at(points: np.ndarray, labels: np.ndarray) -> int:
    """Most frequent label of the pixels the points fall in (ties: smallest id)."""
    size = labels.shape[0]
    cols = np.minimum((points[:, 0] * size).astype(int), size - 1)
    rows = np.minimum((points[:, 1] * size).astype(int), size - 1)
    return int(np.argmax(np.bincount(labels[rows, cols], minlength=256)))


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (Andrew's monotone chain): vertices with positive signed area, no repeats."""
    pts = sorted({(float(x), float(y)) for x, y in points})  # plain floats: ~20x faster loops
    if len(pts) < 3:
        return np.asarray(pts, dtype=np.float64).reshape(-1, 2)

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for px, py in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (py - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (px - out[-2][0])) <= 0:
                out.pop()
            out.append((px, py))
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.float64)


def hull_majority_label(points: np.ndarray, labels: np.ndarray) -> int:
    """Most frequent label among pixel centres inside the convex hull of ``points``.

    ``points``: (K, 2) normalized x, y in [0, 1]; ``labels``: S×S label ids. Pixel (r, c) has
    centre ((c + 0.5)/S, (r + 0.5)/S); a centre on the hull boundary counts as inside.
    """
    size = labels.shape[0]
    if len(points) == 0:
        raise ValueError("an utterance without trace points has no gold tag")
    hull = _hull(np.asarray(points, dtype=np.float64) * size)
    area = 0.0 if len(hull) < 3 else 0.5 * abs(_cross(hull - hull[0], np.roll(hull, -1, 0) - hull[0]).sum())
    if area < 1e-9:
        return _labels_at(points, labels)
    c0, r0 = np.floor(hull.min(axis=0)).astype(int)
    c1, r1 = np.minimum(np.ceil(hull.max(axis=0)).astype(int), size)
    cx, cy = np.meshgrid(np.arange(c0, c1) + 0.5, np.arange(r0, r1) + 0.5)
    inside = np.ones(cx.shape, dtype=bool)
    for a, b in zip(hull, np.roll(hull, -1, 0), strict=True):
        inside &= (b[0] - a[0]) * (cy - a[1]) - (b[1] - a[1]) * (cx - a[0]) >= -1e-9
    counts = np.bincount(labels[r0:r1, c0:c1][inside], minlength=256)
    if counts.sum() == 0:  # a sliver hull between pixel centres: use the points' own pixels
        return _labels_at(points, labels)
    return int(np.argmax(counts))


def gold_tags(narrative: Narrative, labels: np.ndarray) -> list[str]:
    """One COCO-Stuff label name per word of ``narrative.words`` (TReCS hull-majority rule)."""
    tags: list[str] = []
    for utt in align_utterances(narrative):
        label = hull_majority_label(utt.points, labels)
        tags.extend([ID_TO_NAME[label]] * len(utt.words))
    if len(tags) != len(narrative.words):
        raise AssertionError(f"{narrative.item_id}: {len(tags)} tags for {len(narrative.words)} words")
    return tags

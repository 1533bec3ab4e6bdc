"""Toyworld scene layout, rasterization (label + instance maps) and painting (RGB with textures).

Coordinates are normalized: x to the right and y down, both in [0, 1] across the image; pixel
(row r, column c) of an S×S image has its centre at ((c + 0.5) / S, (r + 0.5) / S). A layout is
resolution-free: the same layout rasterizes at any ``image_size``.

Layering (so the label map is always fully covered): stuff bands top to bottom (band k covers
every pixel below its top boundary, so together they cover the image), then stuff blobs
(clouds, trees, bushes, houses), then things from the farthest (smallest bottom y) to the nearest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from trecs_eval.data.toyworld_classes import (
    CLASSES,
    GROUNDS,
    NOT_GROUND,
    SKY_THINGS,
    THEMES,
    Theme,
    ToyClass,
)

Box = tuple[float, float, float, float]  # x0, y0, width, height (normalized)
PIXEL_NOISE_STD = 3.0  # grey levels of per-pixel Gaussian sensor noise


@dataclass(frozen=True)
class BandLayer:
    """A stuff band: covers every pixel at or below its top boundary ``y = top(x)``.

    ``style`` picks the boundary shape; ``params`` are its numbers (see :func:`band_top`).
    """

    name: str
    instance: int
    colour: int
    top: float
    style: str
    params: tuple[float, ...]
    phase: float


@dataclass(frozen=True)
class ShapeLayer:
    """A blob or thing drawn from its class's shape parts inside ``box``."""

    name: str
    instance: int
    colour: int
    box: Box
    mirror: bool
    phase: float


@dataclass(frozen=True)
class Layout:
    """A scene before rasterization: its theme, bands, then shapes in drawing order."""

    theme: str
    bands: tuple[BandLayer, ...]
    shapes: tuple[ShapeLayer, ...]

    def layer(self, instance: int) -> BandLayer | ShapeLayer:
        """The first layer with this instance id (stuff of one class shares an id)."""
        for lay in (*self.bands, *self.shapes):
            if lay.instance == instance:
                return lay
        raise KeyError(instance)


def band_top(band: BandLayer, x: np.ndarray) -> np.ndarray:
    """Top boundary y(x) of a band (normalized); a flat band 0 at the top returns zeros.

    wave/flat/hill: ``top + a·sin(2π f x + φ)`` with params (a, f); peaks: ``top − max_k h_k·
    max(0, 1 − |x − p_k| / w_k)`` with params (p1, h1, w1, p2, ...); skyline: ``top − h_k`` on
    the k-th building, params (edge1, h1, edge2, h2, ...) with increasing right edges.
    """
    if band.style == "peaks":
        p = np.asarray(band.params).reshape(-1, 3)
        rise = p[:, 1:2] * np.maximum(0.0, 1.0 - np.abs(x[None, :] - p[:, 0:1]) / p[:, 2:3])
        return band.top - rise.max(axis=0)
    if band.style == "skyline":
        p = np.asarray(band.params).reshape(-1, 2)
        building = np.minimum(np.searchsorted(p[:, 0], x), len(p) - 1)
        return band.top - p[building, 1]
    amp, freq = band.params
    return band.top + amp * np.sin(2 * np.pi * freq * x + band.phase * 2 * np.pi)


def _boundary_params(style: str, rng: np.random.Generator) -> tuple[float, ...]:
    if style == "peaks":
        k = int(rng.integers(2, 5))
        p = np.stack([rng.uniform(0, 1, k), rng.uniform(0.06, 0.16, k), rng.uniform(0.15, 0.35, k)], 1)
        return tuple(float(v) for v in p.ravel())
    if style == "skyline":
        edges = np.cumsum(rng.uniform(0.07, 0.18, 16))
        edges = edges[: int(np.searchsorted(edges, 1.0)) + 1]
        heights = rng.uniform(0.0, 0.1, len(edges))
        return tuple(float(v) for v in np.stack([edges, heights], 1).ravel())
    amp = {"flat": (0.0, 0.004), "wave": (0.006, 0.02), "hill": (0.03, 0.06)}[style]
    return (float(rng.uniform(*amp)), float(rng.uniform(0.5, 2.5)))


def _make_bands(theme: Theme, rng: np.random.Generator) -> list[BandLayer]:
    bands: list[BandLayer] = []
    top = 0.0
    for spec in theme.bands:
        if rng.random() >= spec.probability:
            continue
        name = spec.choices[int(rng.integers(len(spec.choices)))]
        cls = CLASSES[name]
        style = "flat" if not bands else cls.top_edge
        params = (0.0, 0.0) if not bands else _boundary_params(style, rng)
        colour = int(rng.integers(len(cls.colours)))
        bands.append(BandLayer(name, 0, colour, top, style, params, float(rng.random())))
        top += float(rng.uniform(*spec.height))
    return bands


def _band_extent(bands: list[BandLayer], k: int) -> tuple[float, float]:
    """Rows (normalized) surely inside band k: from below its top wiggle to above the next top."""
    lo = bands[k].top + 0.03
    hi = bands[k + 1].top - 0.03 if k + 1 < len(bands) else 0.99
    return lo, hi


def _overlaps(box: Box, boxes: list[Box], limit: float) -> bool:
    x0, y0, w, h = box
    for bx, by, bw, bh in boxes:
        ix = max(0.0, min(x0 + w, bx + bw) - max(x0, bx))
        iy = max(0.0, min(y0 + h, by + bh) - max(y0, by))
        if ix * iy > limit * min(w * h, bw * bh):
            return True
    return False


def _place_blobs(theme: Theme, bands: list[BandLayer], rng: np.random.Generator) -> list[tuple[str, Box]]:
    ground = next((k for k, b in enumerate(bands) if b.name not in NOT_GROUND), len(bands) - 1)
    placed: list[tuple[str, Box]] = []
    for spec in theme.blobs:
        if rng.random() >= spec.probability:
            continue
        cls = CLASSES[spec.name]
        for _ in range(int(rng.integers(spec.count[0], spec.count[1] + 1))):
            h = cls.height * float(rng.uniform(0.8, 1.2))
            w = h * cls.aspect
            if spec.where == "sky":
                sky_bottom = bands[1].top if len(bands) > 1 else 0.3
                y0 = float(rng.uniform(0.02, max(0.03, sky_bottom - h - 0.04)))
            else:
                y0 = bands[ground].top + float(rng.uniform(0.0, 0.05)) - h
            placed.append((spec.name, (float(rng.uniform(-0.05, 1.05 - w)), y0, w, h)))
    # Far objects first: a larger bottom y is nearer the viewer and drawn later.
    return sorted(placed, key=lambda item: item[1][1] + item[1][3])


def _place_thing(cls: ToyClass, bands: list[BandLayer], rng: np.random.Generator) -> Box | None:
    if cls.name in SKY_THINGS:
        if bands[0].name != "sky-other" or len(bands) < 2:
            return None
        h = cls.height * float(rng.uniform(0.85, 1.15))
        lo, hi = 0.03, bands[1].top - h - 0.03
        if hi <= lo:
            return None
        y0 = float(rng.uniform(lo, hi))
    else:
        allowed = GROUNDS.get(cls.name)
        ks = [k for k, b in enumerate(bands) if (b.name in allowed if allowed else b.name not in NOT_GROUND)]
        if not ks:
            return None
        lo, hi = _band_extent(bands, ks[int(rng.integers(len(ks)))])
        if hi <= lo:
            return None
        feet = float(rng.uniform(lo, hi))
        # Perspective: things lower in the picture are nearer, hence bigger.
        h = cls.height * (0.6 + 0.7 * feet) * float(rng.uniform(0.9, 1.1))
        y0 = feet - h
    w = h * cls.aspect
    return (float(rng.uniform(0.0, max(0.0, 1.0 - w))), y0, w, h)


def make_layout(rng: np.random.Generator) -> Layout:
    """Draw a random scene layout: a theme, its bands, blobs and 2–6 non-overlapping things.

    Instance ids: each stuff class present gets one id (COCO-Stuff has one region per stuff
    class and image), each thing its own; ids count up from 1 in drawing order.
    """
    theme = THEMES[int(rng.integers(len(THEMES)))]
    bands = _make_bands(theme, rng)
    blobs = _place_blobs(theme, bands, rng)
    names, weights = zip(*theme.things, strict=True)
    prob = np.asarray(weights, dtype=float) / sum(weights)
    things: list[tuple[str, Box]] = []
    for _ in range(int(rng.integers(theme.n_things[0], theme.n_things[1] + 1))):
        cls = CLASSES[names[int(rng.choice(len(names), p=prob))]]
        for _attempt in range(20):
            box = _place_thing(cls, bands, rng)
            if box is not None and not _overlaps(box, [b for _, b in things], 0.15):
                things.append((cls.name, box))
                break
    things.sort(key=lambda item: item[1][1] + item[1][3])
    ids: dict[str, int] = {}
    out_bands = []
    for band in bands:
        ids.setdefault(band.name, len(ids) + 1)
        out_bands.append(replace(band, instance=ids[band.name]))
    shapes = []
    for name, box in blobs:
        ids.setdefault(name, len(ids) + 1)
        shapes.append(_shape_layer(name, ids[name], box, rng))
    for k, (name, box) in enumerate(things):
        shapes.append(_shape_layer(name, len(ids) + 1 + k, box, rng))
    return Layout(theme.name, tuple(out_bands), tuple(shapes))


def _shape_layer(name: str, instance: int, box: Box, rng: np.random.Generator) -> ShapeLayer:
    colour = int(rng.integers(len(CLASSES[name].colours)))
    return ShapeLayer(name, instance, colour, box, bool(rng.random() < 0.5), float(rng.random()))


def shape_mask(layer: ShapeLayer, size: int) -> tuple[slice, slice, np.ndarray]:
    """Pixels of a shape: (rows, cols) slices of its clipped box and a boolean mask over them."""
    x0, y0, w, h = layer.box
    c0, c1 = max(0, int(np.floor(x0 * size))), min(size, int(np.ceil((x0 + w) * size)))
    r0, r1 = max(0, int(np.floor(y0 * size))), min(size, int(np.ceil((y0 + h) * size)))
    u = ((np.arange(c0, c1) + 0.5) / size - x0) / w
    v = ((np.arange(r0, r1) + 0.5) / size - y0) / h
    u = 1.0 - u if layer.mirror else u
    uu, vv = np.meshgrid(u, v)
    mask = np.zeros(uu.shape, dtype=bool)
    for part in CLASSES[layer.name].parts:
        mask |= _part_mask(part, uu, vv)
    return slice(r0, r1), slice(c0, c1), mask


def _part_mask(part: tuple, uu: np.ndarray, vv: np.ndarray) -> np.ndarray:
    kind = part[0]
    if kind == "poly":  # convex polygon: inside every edge's half-plane (either winding)
        pts = np.asarray(part[1:], dtype=float)
        nxt = np.roll(pts, -1, axis=0)
        stack = np.stack([(b[0] - a[0]) * (vv - a[1]) - (b[1] - a[1]) * (uu - a[0])
                          for a, b in zip(pts, nxt, strict=True)])
        return np.all(stack >= 0, axis=0) | np.all(stack <= 0, axis=0)
    u0, v0, u1, v1 = part[1:]
    if kind == "rect":
        return (uu >= u0) & (uu <= u1) & (vv >= v0) & (vv <= v1)
    cu, cv, ru, rv = (u0 + u1) / 2, (v0 + v1) / 2, (u1 - u0) / 2, (v1 - v0) / 2
    inside = ((uu - cu) / ru) ** 2 + ((vv - cv) / rv) ** 2 <= 1.0
    return inside & (vv <= cv) if kind == "top_half_ellipse" else inside


def rasterize(layout: Layout, size: int) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Label map (uint8 COCO-Stuff ids), instance map (uint16) and each shape's full pixel area.

    The full area (before occlusion) lets callers drop things that later layers hide.
    """
    labels = np.empty((size, size), dtype=np.uint8)
    instances = np.empty((size, size), dtype=np.uint16)
    x = (np.arange(size) + 0.5) / size
    y = ((np.arange(size) + 0.5) / size)[:, None]
    for k, band in enumerate(layout.bands):
        inside = np.ones((size, size), dtype=bool) if k == 0 else y >= band_top(band, x)[None, :]
        labels[inside] = CLASSES[band.name].label
        instances[inside] = band.instance
    full: dict[int, int] = {}
    for shape in layout.shapes:
        rows, cols, mask = shape_mask(shape, size)
        labels[rows, cols][mask] = CLASSES[shape.name].label
        instances[rows, cols][mask] = shape.instance
        full[shape.instance] = full.get(shape.instance, 0) + int(mask.sum())
    return labels, instances, full


def displace(layout: Layout, rng: np.random.Generator, amount: tuple[float, float]) -> Layout:
    """The same layout with every shape moved by a seeded offset of ``amount`` (normalized) in x
    and a third of that in y, each with a random sign."""
    shapes = []
    for s in layout.shapes:
        dx = float(rng.uniform(*amount)) * (1 if rng.random() < 0.5 else -1)
        dy = float(rng.uniform(*amount)) / 3 * (1 if rng.random() < 0.5 else -1)
        shapes.append(replace(s, box=(s.box[0] + dx, s.box[1] + dy, s.box[2], s.box[3])))
    return replace(layout, shapes=tuple(shapes))

"""Paint a rasterized toyworld scene: class-specific colour and texture per region.

Each region's colour is ``(1 − p)·base + p·alt`` where ``p ∈ [0, 1]`` is the class's texture
pattern evaluated at the pixel's normalized image coordinates (so a texture looks the same at
any resolution), then Gaussian pixel noise is added. Base/alt colours and the pattern kind and
period come from :mod:`trecs_eval.data.toyworld_classes`; the phase is per region.
"""

from __future__ import annotations

import numpy as np

from trecs_eval.data.toyworld_classes import CLASSES
from trecs_eval.data.toyworld_render import PIXEL_NOISE_STD, Layout


def _value_noise(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, cell: float) -> np.ndarray:
    """Smooth noise in [0, 1]: uniform values on a grid of ``cell``-sized squares, bilinearly interpolated."""
    g = int(np.ceil(1.0 / cell)) + 3
    grid = rng.random((g, g), dtype=np.float32)
    gu = np.clip(u * np.float32(1.0 / cell) + np.float32(1.0), 0, g - 1.001)
    gv = np.clip(v * np.float32(1.0 / cell) + np.float32(1.0), 0, g - 1.001)
    iu, iv = gu.astype(np.intp), gv.astype(np.intp)
    fu, fv = gu - iu, gv - iv
    top = grid[iv, iu] * (1 - fu) + grid[iv, iu + 1] * fu
    bottom = grid[iv + 1, iu] * (1 - fu) + grid[iv + 1, iu + 1] * fu
    return top * (1 - fv) + bottom * fv


def pattern(kind: str, period: float, u: np.ndarray, v: np.ndarray, phase: float,
            rng: np.random.Generator) -> np.ndarray:
    """Texture value ``p ∈ [0, 1]`` of a pattern kind at normalized image coordinates (u, v).

    ``period`` is the pattern's period (or noise cell) as a fraction of the image side;
    ``phase ∈ [0, 1)`` shifts it per region; noise patterns draw from ``rng``.
    """
    two_pi = 2 * np.pi
    if kind == "gradient":
        return np.clip(v / period, 0, 1) * 0.8 + 0.2 * _value_noise(rng, u, v, 0.2)
    if kind in ("smooth", "grain"):
        return _value_noise(rng, u, v, period)
    if kind == "blotch":
        n = _value_noise(rng, u, v, period)
        return 1.0 / (1.0 + np.exp(-(n - 0.5) * 14.0))
    if kind == "stripes_h":
        return 0.5 + 0.5 * np.sin(two_pi * (v / period + phase))
    if kind == "stripes_v":
        return 0.5 + 0.5 * np.sin(two_pi * (u / period + phase))
    if kind == "stripes_d":
        return 0.5 + 0.5 * np.sin(two_pi * ((u + v) / period + phase))
    if kind == "checker":
        return ((np.floor(u / period + phase) + np.floor(v / period)) % 2).astype(float)
    if kind == "dots":
        s = np.sin(two_pi * (u / period + phase)) * np.sin(two_pi * v / period)
        return (s > 0.4).astype(float)
    if kind == "waves":
        return 0.5 + 0.5 * np.sin(two_pi * (v / period + 0.6 * np.sin(two_pi * u / (5 * period)) + phase))
    if kind == "bricks":
        row = np.floor(v / period)
        shifted = u / (2 * period) + 0.5 * (row % 2) + phase
        mortar = (np.abs(v / period - row - 0.5) > 0.4) | (np.abs(shifted - np.floor(shifted) - 0.5) > 0.46)
        return mortar.astype(float)
    if kind == "planks":
        plank = np.floor(v / period)
        tone = (np.sin(plank * 12.9898 + phase * 78.233) * 43758.5453) % 1.0  # a fixed hash per plank
        edge = np.abs(v / period - plank - 0.5) > 0.45
        return np.where(edge, 1.0, 0.6 * tone + 0.4 * _value_noise(rng, u * 0.2, v, period))
    raise ValueError(f"unknown texture kind {kind!r}")


def paint(layout: Layout, instances: np.ndarray, rng: np.random.Generator,
          colour_shift: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """RGB uint8 image of a rasterized layout (H×W×3).

    ``colour_shift`` (class name -> RGB offset in grey levels) jitters class colours; used by
    the shifted image set.
    """
    size = instances.shape[0]
    flat = instances.ravel()
    order = np.argsort(flat, kind="stable")
    ids, starts = np.unique(flat[order], return_index=True)
    ends = np.append(starts[1:], flat.size)
    image = np.empty((flat.size, 3), dtype=np.float32)
    for inst, lo, hi in zip(ids, starts, ends, strict=True):
        layer = layout.layer(int(inst))
        cls = CLASSES[layer.name]
        pixels = order[lo:hi]
        # float32 throughout: textures need no more, and it halves the time of this loop.
        u = ((pixels % size).astype(np.float32) + np.float32(0.5)) * np.float32(1.0 / size)
        v = ((pixels // size).astype(np.float32) + np.float32(0.5)) * np.float32(1.0 / size)
        p = pattern(cls.texture[0], cls.texture[1], u, v, layer.phase, rng)[:, None]
        look = cls.colours[layer.colour]
        base = np.asarray(look.base, dtype=np.float32)
        alt = np.asarray(look.alt, dtype=np.float32)
        if colour_shift is not None:
            base = base + colour_shift[layer.name]
            alt = alt + colour_shift[layer.name]
        image[pixels] = base + p * (alt - base)
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(PIXEL_NOISE_STD)
    image += noise
    np.clip(image, 0, 255, out=image)
    return np.rint(image, out=image).astype(np.uint8).reshape(size, size, 3)

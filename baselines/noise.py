"""Lower bounds: ``noise`` (uniform RGB noise) and ``mean-color`` (one flat colour for every item).

Every metric must rank these last; a metric that does not is broken. Noise is drawn per item
from :func:`item_seed`, so an item's image does not depend on batching.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from baselines._common import find_image, load_rgb, read_params
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import ConfigError
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext, item_seed

log = logging.getLogger(__name__)


class NoiseGenerator:
    """Each pixel channel uniform on {0, ..., 255}, independently, seeded per item."""

    name: ClassVar[str] = "noise"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=False, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        p = read_params(self.name, params, {"image_size": context.image_size})
        self.image_size: int = p["image_size"]

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        shape = (self.image_size, self.image_size, 3)
        rngs = [np.random.default_rng(item_seed(seed, it.item_id)) for it in items]
        return [Generation(rng.integers(0, 256, shape, dtype=np.uint8)) for rng in rngs]


class MeanColorGenerator:
    """A flat image of one colour: ``color = [r, g, b]``, or the mean RGB over every pixel of the
    training images (``context.train_dir/images``) when no colour is given."""

    name: ClassVar[str] = "mean-color"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=False, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        p = read_params(self.name, params, {"image_size": context.image_size, "color": None})
        self.image_size: int = p["image_size"]
        self.color = _check_color(p["color"]) if p["color"] is not None else _train_mean_color(context)

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        flat = np.empty((self.image_size, self.image_size, 3), dtype=np.uint8)
        flat[...] = self.color
        return [Generation(flat.copy()) for _ in items]


def _check_color(color: Any) -> tuple[int, int, int]:
    if not (isinstance(color, list) and len(color) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)):
        raise ConfigError(f"mean-color: parameter color must be [r, g, b] with ints in 0..255, got {color!r}")
    return (color[0], color[1], color[2])


def _train_mean_color(context: GeneratorContext) -> tuple[int, int, int]:
    if context.train_dir is None or not (context.train_dir / "images").is_dir():
        raise ConfigError("mean-color: no color given and no training images to average",
                          hint="set params.color = [r, g, b], or dataset.train_dir to a toyworld folder")
    folder = context.train_dir / "images"
    paths = sorted(p for p in folder.iterdir() if find_image(folder, p.stem) == p)
    if not paths:
        raise ConfigError(f"mean-color: no images in {folder}")
    # mean over images of each image's mean: every image counts once whatever its size
    means = np.stack([load_rgb(p).reshape(-1, 3).mean(axis=0) for p in paths])
    color = np.rint(means.mean(axis=0)).astype(int)
    log.info("mean-color: mean RGB of %d training images = %s", len(paths), color.tolist())
    return (int(color[0]), int(color[1]), int(color[2]))

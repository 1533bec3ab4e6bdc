"""``palette`` synthesizer: each label gets its flat COCO-Stuff palette colour (debugging, reports)."""

from __future__ import annotations

import numpy as np

from trecs_eval.data.coco_stuff import PALETTE


def synthesize_palette(labels: np.ndarray) -> np.ndarray:
    """H×W uint8 label ids -> H×W×3 uint8 RGB, ``PALETTE[label]`` per pixel."""
    return PALETTE[np.asarray(labels, dtype=np.uint8)]

"""Test helpers for CLIP: a tiny registered open_clip config and generated weight files.

The tiny config goes through open_clip's own registry (``add_model_config``), so the code under
test loads it exactly like a built-in model; it only makes tests fast where the architecture
does not matter. The default ViT-B-32 path is tested separately with a generated checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

TINY_CLIP = "trecs-test-tiny-vit"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def register_tiny_clip(directory: Path) -> str:
    """Write the tiny config as ``<directory>/<TINY_CLIP>.json`` and register it with open_clip."""
    import open_clip

    if TINY_CLIP not in open_clip.list_models():
        path = directory / f"{TINY_CLIP}.json"
        path.write_text(json.dumps(TINY_CLIP_CONFIG))
        open_clip.add_model_config(path)
    return TINY_CLIP


def write_test_images(directory: Path, n: int, size: int = 64, seed: int = 0) -> list[Path]:
    """``n`` varied PNGs (noise, gradients, colour blocks), seeded."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    ramp = np.linspace(0, 255, size)
    for i in range(n):
        kind = i % 3
        if kind == 0:
            pixels = rng.integers(0, 256, (size, size, 3))
        elif kind == 1:
            pixels = ramp[None, :, None] * rng.uniform(0.2, 1.0, 3)[None, None, :] + np.zeros((size, 1, 1))
        else:
            blocks = rng.integers(0, 256, (4, 4, 3))
            pixels = np.kron(blocks, np.ones((size // 4, size // 4, 1)))
        path = directory / f"img_{i:03d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(path)
    return paths

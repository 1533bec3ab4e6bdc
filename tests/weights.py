"""Shared test helpers: weight files the tests make themselves, and small synthetic image sets.

Pretrained weights cannot be downloaded here, so tests build a calibrated random Inception
with the package's own ``make_calibrated_inception_weights`` and load it through the same
``--inception-weights PATH`` code a user's file goes through. Other engineers: append helpers
below; do not change existing ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

INCEPTION_TEST_SEED = 1234
_MADE: dict[int, Path] = {}  # one weights file per process, even if several conftests import us


def calibrated_inception_weights_file(tmp_path_factory: pytest.TempPathFactory,
                                      seed: int = INCEPTION_TEST_SEED) -> Path:
    """Make (once per process and seed) a calibrated random Inception weights file."""
    from trecs_eval.features.calibration import make_calibrated_inception_weights

    if seed not in _MADE:
        path = tmp_path_factory.mktemp("inception-weights") / f"inception-seed{seed}.pth"
        make_calibrated_inception_weights(path, seed)
        _MADE[seed] = path
    return _MADE[seed]


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session-scoped calibrated random Inception weights (a torch.save'd state dict)."""
    return calibrated_inception_weights_file(tmp_path_factory)


def write_image_set(directory: Path, n: int, seed: int, px: int = 64, darken: float = 1.0,
                    fmt: str = "png") -> list[Path]:
    """``n`` varied synthetic RGB images (blocks, colour fields, noise) named 000.png ..."""
    from trecs_eval.features.calibration import synthetic_images

    directory.mkdir(parents=True, exist_ok=True)
    pixels = synthetic_images(np.random.RandomState(seed), n, px).permute(0, 2, 3, 1).numpy()
    paths = []
    for i, image in enumerate(pixels):
        path = directory / f"{i:03d}.{fmt}"
        Image.fromarray((image * darken).astype(np.uint8)).save(path)
        paths.append(path)
    return paths

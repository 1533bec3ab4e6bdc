"""Fixtures for reference tests: calibrated Inception weights and two small image sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.weights import inception_weights, write_image_set  # noqa: F401  (fixture re-export)

N_IMAGES_PER_SET = 52  # KID needs >= 50; Inception at 299 px runs ~12 img/s on 2 cores


@pytest.fixture(scope="session")
def two_image_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two folders of different synthetic images (the second darker, another seed)."""
    root = tmp_path_factory.mktemp("image-sets")
    write_image_set(root / "a", N_IMAGES_PER_SET, seed=11)
    write_image_set(root / "b", N_IMAGES_PER_SET, seed=22, darken=0.6)
    return root / "a", root / "b"

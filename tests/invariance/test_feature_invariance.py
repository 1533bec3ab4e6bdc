"""Inception features do not depend on batch size, file order or loader workers; cache reuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.weights import write_image_set
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.inception import InceptionExtractor, InceptionFeatures
from trecs_eval.metrics.fid import features_to_fid

# Each image is preprocessed alone; only the convolution's blocking may change with the batch
# size (oneDNN picks kernels by shape), which moves float32 sums at the ~1e-6 level.
FEATURE_ABS_TOL_ACROSS_BATCHING = 1e-4
SELF_FID_MAX = 1e-6
N_IMAGES = 6


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_image_set(tmp_path_factory.mktemp("inv"), N_IMAGES, seed=5, px=48)


def _extract(weights: Path, paths: list[Path], cache_dir: Path, batch_size: int,
             workers: int) -> InceptionFeatures:
    extractor = InceptionExtractor(inception_weights=str(weights), device="cpu", batch_size=batch_size,
                                   num_workers=workers, progress=False,
                                   cache=FeatureCache(cache_dir / "features.sqlite"))
    return extractor.extract(paths)


@pytest.fixture(scope="module")
def runs(inception_weights: Path, image_paths: list[Path], tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, InceptionFeatures]:
    """Three cold extractions (separate caches): bs 1 / 0 workers; bs 64 shuffled; bs 4 / 2 workers."""
    shuffled = [image_paths[i] for i in np.random.RandomState(0).permutation(len(image_paths))]
    return {
        "bs1": _extract(inception_weights, image_paths, tmp_path_factory.mktemp("c1"), 1, 0),
        "bs64_shuffled": _extract(inception_weights, shuffled, tmp_path_factory.mktemp("c2"), 64, 1),
        "workers2": _extract(inception_weights, image_paths, tmp_path_factory.mktemp("c3"), 4, 2),
    }


def _by_path(features: InceptionFeatures) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {p: (features.pool[i], features.logits[i]) for i, p in enumerate(features.paths)}


@pytest.mark.parametrize("other", ["bs64_shuffled", "workers2"])
def test_features_independent_of_batching_order_and_workers(runs: dict[str, InceptionFeatures],
                                                            other: str) -> None:
    base, found = _by_path(runs["bs1"]), _by_path(runs[other])
    assert runs[other].cache_misses == N_IMAGES  # really computed, not read from a cache
    assert set(base) == set(found)
    for path, (pool, logits) in base.items():
        np.testing.assert_allclose(found[path][0], pool, rtol=0, atol=FEATURE_ABS_TOL_ACROSS_BATCHING)
        np.testing.assert_allclose(found[path][1], logits, rtol=0, atol=FEATURE_ABS_TOL_ACROSS_BATCHING)
    assert float(np.abs(runs["bs1"].pool).max()) > 0.1  # features did not vanish


def test_set_against_itself(runs: dict[str, InceptionFeatures]) -> None:
    value, _ = features_to_fid(runs["bs1"].pool, runs["bs1"].pool)
    assert 0.0 <= value < SELF_FID_MAX


def test_warm_rerun_reads_cache_without_loading_the_model(
        inception_weights: Path, image_paths: list[Path], tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "features.sqlite")
    first = InceptionExtractor(inception_weights=str(inception_weights), device="cpu", progress=False,
                               cache=cache).extract(image_paths[:2])
    renamed = tmp_path / "renamed.png"  # content, not names: a renamed copy hits
    renamed.write_bytes(image_paths[0].read_bytes())
    warm = InceptionExtractor(inception_weights=str(inception_weights), device="cpu", progress=False,
                              cache=cache)
    again = warm.extract([renamed, image_paths[1]])
    assert warm._model is None  # no forward pass, not even a model load
    assert (again.cache_hits, again.cache_misses) == (2, 0)
    np.testing.assert_array_equal(again.pool, first.pool)
    other_preprocessing = InceptionExtractor(inception_weights=str(inception_weights), device="cpu",
                                             preprocessing="clean", progress=False, cache=cache)
    assert other_preprocessing.identity.key() != warm.identity.key()  # a changed identity misses
    assert cache.get_many(other_preprocessing.identity.key(), ["x"]) == {}


def test_calibrated_weights_make_is_informative(inception_weights: Path, runs: dict[str, InceptionFeatures],
                                                tmp_path: Path) -> None:
    """He init alone gives IS ~1.005 for anything; the calibrated classifier separates varied
    images from near-identical ones (one colour plus faint noise)."""
    from PIL import Image

    from trecs_eval.metrics.inception_score import logits_to_inception_score

    rng = np.random.default_rng(8)
    for i in range(N_IMAGES):
        pixels = np.clip(np.full((48, 48, 3), (90, 140, 60)) + rng.normal(0, 3, (48, 48, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / f"{i}.png")
    uniform = _extract(inception_weights, sorted(tmp_path.glob("*.png")), tmp_path, N_IMAGES, 0)
    varied_is = logits_to_inception_score(runs["bs1"].logits, seed=0, splits=1).mean
    uniform_is = logits_to_inception_score(uniform.logits, seed=0, splits=1).mean
    assert varied_is > 1.5 and uniform_is < 1.1 and varied_is > uniform_is + 0.5

"""A feature extraction cut after any batch (what `kill -9` leaves: the batches committed to the
cache so far) and then resumed gives exactly, bit for bit, the features and numbers of an uncut
run; so does a run whose cache already held some of its images (another set sharing them) or that
resumes with another batch size. The cut is a test hook (the cache refuses the k-th commit), not
a timed signal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.weights import write_image_set
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.inception import InceptionExtractor, InceptionFeatures
from trecs_eval.metrics.inception_score import logits_to_inception_score

N_IMAGES, BATCH = 6, 2


class Cut(Exception):
    """Raised by the cache in place of a kill -9."""


class CuttingCache(FeatureCache):
    """Commits the first ``after`` batches, then refuses: the state a run killed in the next batch leaves."""

    def __init__(self, path: Path, after: int) -> None:
        super().__init__(path)
        self.after = after

    def put_many(self, identity_key, entries):  # type: ignore[no-untyped-def]
        if self.after == 0:
            raise Cut
        self.after -= 1
        super().put_many(identity_key, entries)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_image_set(tmp_path_factory.mktemp("cut"), N_IMAGES, seed=11, px=40)


@pytest.fixture(scope="module")
def extractor(inception_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> InceptionExtractor:
    """One extractor (the model loads once); each extraction gets its own cache."""
    unused = FeatureCache(tmp_path_factory.mktemp("unused") / "f.sqlite")
    return InceptionExtractor(inception_weights=str(inception_weights), device="cpu", batch_size=BATCH,
                              progress=False, cache=unused)


def extract(extractor: InceptionExtractor, paths: list[Path], cache: FeatureCache,
            batch_size: int = BATCH) -> InceptionFeatures:
    extractor.cache, extractor.batch_size = cache, batch_size
    return extractor.extract(paths)


@pytest.fixture(scope="module")
def uncut(extractor: InceptionExtractor, images: list[Path], tmp_path_factory: pytest.TempPathFactory
          ) -> InceptionFeatures:
    return extract(extractor, images, FeatureCache(tmp_path_factory.mktemp("clean") / "f.sqlite"))


def assert_bit_identical(found: InceptionFeatures, want: InceptionFeatures) -> None:
    assert found.paths == want.paths
    assert found.pool.tobytes() == want.pool.tobytes()
    assert found.logits.tobytes() == want.logits.tobytes()
    found_is, want_is = (logits_to_inception_score(f.logits, splits=2, seed=0) for f in (found, want))
    assert (found_is.mean, found_is.std) == (want_is.mean, want_is.std)


@pytest.mark.parametrize(("after", "resume_batch"), [(0, BATCH), (1, BATCH), (2, BATCH), (1, 4)])
def test_an_extraction_cut_after_any_batch_resumes_to_the_uncut_numbers(
        extractor, images, uncut, tmp_path, after, resume_batch):
    cache_file = tmp_path / "f.sqlite"
    with pytest.raises(Cut):
        extract(extractor, images, CuttingCache(cache_file, after))
    cache = FeatureCache(cache_file)
    assert cache.count() == after * BATCH  # the committed batches, nothing of the cut one
    resumed = extract(extractor, images, cache, resume_batch)
    assert resumed.cache_hits == after * BATCH
    assert_bit_identical(resumed, uncut)


@pytest.mark.parametrize("shared", [(2, 5), (3,)])
def test_features_do_not_depend_on_what_the_cache_already_held(extractor, images, uncut, tmp_path, shared):
    """e.g. the `real` system's images are byte-identical to the reference set's: whichever set is
    extracted first fills the cache for the other."""
    cache = FeatureCache(tmp_path / "f.sqlite")
    extract(extractor, [images[i] for i in shared], cache)
    assert_bit_identical(extract(extractor, images, cache), uncut)

"""PRDC invariances: item order, chunk size, translation; exact duplicates; a set against itself."""

from __future__ import annotations

import numpy as np
import pytest

from trecs_eval.metrics.prdc import features_to_prdc, knn_radii, prdc_results

EXACT = 1e-12  # the same counts; only the summation order of a float mean may differ
SELF_DENSITY_TIE_PAIRS = 3  # ties at a ball's radius decided by round-off (see the test)


def _sets(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(70, 6)), rng.normal(size=(60, 6)) + 0.5


def test_order_and_chunking_do_not_matter() -> None:
    real, fake = _sets()
    base = features_to_prdc(real, fake).as_dict()
    rng = np.random.default_rng(1)
    shuffled = features_to_prdc(real[rng.permutation(70)], fake[rng.permutation(60)], chunk_rows=5)
    assert shuffled.as_dict() == pytest.approx(base, abs=EXACT)


def test_translation_does_not_matter() -> None:
    real, fake = _sets()
    shift = np.full(6, 1e3)
    assert features_to_prdc(real + shift, fake + shift).as_dict() == pytest.approx(
        features_to_prdc(real, fake).as_dict(), abs=1e-12)


def test_set_against_itself_is_perfect() -> None:
    real, _ = _sets()
    values = features_to_prdc(real, real.copy())
    assert (values.precision, values.recall, values.coverage) == (1.0, 1.0, 1.0)
    # Density is exactly 1 in exact arithmetic (each ball holds its centre and k - 1 neighbours);
    # the k-th neighbour sits *on* the sphere, so round-off (BLAS blocking differs between the
    # real-real and real-generated products) may put it inside: allow that for a few pairs.
    assert values.density == pytest.approx(1.0, abs=SELF_DENSITY_TIE_PAIRS / (5 * len(real)))


def test_duplicates_are_neighbours_at_distance_zero() -> None:
    # Each real point appears k + 1 = 6 times: its k-NN radius is exactly 0 and its open ball is
    # empty, so nothing (not even a copy of the point) lies inside it.
    rng = np.random.default_rng(2)
    base = rng.normal(size=(10, 3))
    real = np.repeat(base, 6, axis=0) + 1e3  # a large offset: round-off must not hide the zeros
    ids = np.repeat(np.arange(10), 6)
    assert np.all(knn_radii(real, 5, ids) == 0.0)
    values = features_to_prdc(real, base + 1e3)
    assert values.precision == 0.0 and values.density == 0.0 and values.coverage == 0.0


def test_a_generated_copy_of_a_real_point_is_inside_its_ball() -> None:
    real, fake = _sets(3)
    fake = fake.copy()
    fake[0] = real[0]  # an exact copy: distance exactly 0 < the (positive) radius
    parts = prdc_results(real, fake, n_resamples=0, fake_ids=[str(i) for i in range(60)])
    assert parts[0].per_sample["0"] == 1.0


def test_duplicating_every_generated_item_keeps_precision_density_coverage() -> None:
    real, fake = _sets(4)
    once, twice = features_to_prdc(real, fake), features_to_prdc(real, np.concatenate([fake, fake]))
    assert (twice.precision, twice.density, twice.coverage) == pytest.approx(
        (once.precision, once.density, once.coverage), abs=EXACT)

"""PRDC against the ``prdc`` package (Naeem et al.'s reference code, PyPI) and against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.prdc import METRIC_NAMES, features_to_prdc, prdc_results

# The same counts on data without distance ties; only the float division may round differently.
PRDC_ABS_TOL_VS_PRDC_PACKAGE = 1e-12


def _sets(seed: int, n_real: int = 120, n_fake: int = 90, d: int = 8, dtype: type = np.float32
          ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, d))
    fake = rng.normal(size=(n_fake, d)) * 1.3 + 0.4
    return real.astype(dtype), fake.astype(dtype)


@pytest.mark.parametrize("nearest_k", [1, 3, 5, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_prdc_package(nearest_k: int, seed: int) -> None:
    from prdc import compute_prdc

    real, fake = _sets(seed)
    expected = compute_prdc(real, fake, nearest_k)
    # small chunks: the blockwise code path is exercised across block boundaries
    ours = features_to_prdc(real, fake, nearest_k, chunk_rows=17).as_dict()
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(float(expected[name]), abs=PRDC_ABS_TOL_VS_PRDC_PACKAGE), name


def test_matches_prdc_package_high_dimension_float64() -> None:
    from prdc import compute_prdc

    real, fake = _sets(7, n_real=80, n_fake=110, d=300, dtype=np.float64)
    expected = compute_prdc(real, fake, 5)
    ours = features_to_prdc(real, fake, 5).as_dict()
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(float(expected[name]), abs=PRDC_ABS_TOL_VS_PRDC_PACKAGE), name


def _brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The paper's definitions with explicit loops over pairs (scipy distances, sorted radii)."""
    from scipy.spatial.distance import cdist

    rr, ff, rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_rad = np.sort(rr, axis=1)[:, k]  # column 0 is the point itself
    f_rad = np.sort(ff, axis=1)[:, k]
    n, m = rf.shape
    prec = np.mean([any(rf[i, j] < r_rad[i] for i in range(n)) for j in range(m)])
    rec = np.mean([any(rf[i, j] < f_rad[j] for j in range(m)) for i in range(n)])
    dens = sum(rf[i, j] < r_rad[i] for i in range(n) for j in range(m)) / (k * m)
    cov = np.mean([rf[i].min() < r_rad[i] for i in range(n)])
    return {"precision": prec, "recall": rec, "density": dens, "coverage": cov}


def test_matches_brute_force_definitions() -> None:
    real, fake = _sets(3, n_real=40, n_fake=35, d=4, dtype=np.float64)
    expected = _brute_force(real, fake, 5)
    ours = features_to_prdc(real, fake, 5, chunk_rows=7).as_dict()
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(expected[name], abs=PRDC_ABS_TOL_VS_PRDC_PACKAGE), name


def test_too_few_items_is_an_error() -> None:
    real, fake = _sets(0, n_real=5, n_fake=20)
    with pytest.raises(TrecsEvalError, match="more than 5 items"):
        features_to_prdc(real, fake, 5)


def test_results_carry_intervals_and_sides() -> None:
    real, fake = _sets(4, n_real=60, n_fake=50)
    results = prdc_results(real, fake, seed=3, n_resamples=200,
                           fake_ids=[f"g{i}" for i in range(50)], real_ids=[f"r{i}" for i in range(60)])
    assert [r.name for r in results] == list(METRIC_NAMES)
    for r in results:
        assert r.ci_low <= r.value <= r.ci_high, r
        side = r.params["interval_over"]
        assert len(r.per_sample) == (50 if side == "generated" else 60)
        assert np.mean(list(r.per_sample.values())) == pytest.approx(r.value)
    by_name = {r.name: r for r in results}
    clustered = prdc_results(real, fake, seed=3, n_resamples=200, fake_clusters=[i // 5 for i in range(50)])
    assert clustered[0].ci_low != results[0].ci_low  # whole images resampled on the generated side
    assert by_name["recall"].params["interval_over"] == "real"
    assert by_name["precision"].params["interval_over"] == "generated"

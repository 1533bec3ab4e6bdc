"""CMMD against an independent NumPy implementation written from the paper and the reference code.

The reference below follows the formulas literally (scipy's pairwise distances, explicit
diagonal handling) and shares no code with ``trecs_eval.metrics.cmmd``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.bootstrap import bootstrap_indices
from trecs_eval.metrics.cmmd import CmmdAgainstReference, cmmd_result, features_to_cmmd

CMMD_REL_TOL_VS_NUMPY_REFERENCE = 1e-9  # both float64; only summation order differs
SIGMA, SCALE = 10.0, 1000.0  # the paper's constants, restated here on purpose


def _reference_mmd2(x: np.ndarray, y: np.ndarray, unbiased: bool) -> float:
    """MMD² (Gretton et al. 2012): Eq. (5) biased / Eq. (3) unbiased, Gaussian RBF, ×1000."""
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * SIGMA**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    if unbiased:
        xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    else:
        xx, yy = kxx.mean(), kyy.mean()
    return SCALE * (xx + yy - 2 * kxy.mean())


def _unit(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_matches_numpy_reference(estimator: str) -> None:
    rng = np.random.default_rng(0)
    x, y = _unit(rng, 70, 32, 0.3), _unit(rng, 90, 32)
    ours = features_to_cmmd(x, y, estimator=estimator)
    assert ours == pytest.approx(_reference_mmd2(x, y, estimator == "unbiased"),
                                 rel=CMMD_REL_TOL_VS_NUMPY_REFERENCE)
    assert ours > 0


def test_default_is_the_reference_codes_biased_estimator() -> None:
    rng = np.random.default_rng(1)
    x, y = _unit(rng, 40, 16, 0.5), _unit(rng, 40, 16)
    assert features_to_cmmd(x, y) == pytest.approx(_reference_mmd2(x, y, unbiased=False),
                                                   rel=CMMD_REL_TOL_VS_NUMPY_REFERENCE)
    assert features_to_cmmd(x, y) != pytest.approx(_reference_mmd2(x, y, unbiased=True),
                                                   rel=CMMD_REL_TOL_VS_NUMPY_REFERENCE)


def test_not_unit_norm_scale_sensitivity() -> None:
    # sigma is absolute: scaling both sets changes CMMD (unlike a scale-free metric)
    rng = np.random.default_rng(2)
    x, y = _unit(rng, 30, 8, 0.5), _unit(rng, 30, 8)
    assert features_to_cmmd(3 * x, 3 * y) == pytest.approx(_reference_mmd2(3 * x, 3 * y, False),
                                                           rel=CMMD_REL_TOL_VS_NUMPY_REFERENCE)


def test_identical_sets_and_order() -> None:
    rng = np.random.default_rng(3)
    x, y = _unit(rng, 50, 16, 0.4), _unit(rng, 60, 16)
    assert features_to_cmmd(x, x.copy()) == pytest.approx(0.0, abs=1e-9)
    perm = rng.permutation(50)
    assert features_to_cmmd(x[perm], y) == pytest.approx(features_to_cmmd(x, y), rel=1e-12)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_resample_statistic_equals_recomputing_on_the_resample(estimator: str) -> None:
    rng = np.random.default_rng(4)
    x, y = _unit(rng, 30, 8, 0.5), _unit(rng, 35, 8)
    stat = CmmdAgainstReference(y, estimator=estimator).statistic(x)
    assert stat(np.arange(30)) == pytest.approx(features_to_cmmd(x, y, estimator=estimator), rel=1e-10)
    for idx in bootstrap_indices(30, 5, seed=0):
        # the reference's formula on the resampled rows, duplicates as separate draws
        assert stat(idx) == pytest.approx(_reference_mmd2(x[idx], y, estimator == "unbiased"), rel=1e-9)


def test_result_interval_and_warnings() -> None:
    rng = np.random.default_rng(5)
    x, y = _unit(rng, 40, 8, 0.6), _unit(rng, 40, 8)
    result = cmmd_result(x, y, seed=1, n_resamples=50)
    assert result.ci_low < result.ci_high and result.params["estimator"] == "biased"
    assert result.warnings == ()
    assert "not L2-normalized" in cmmd_result(3 * x, y, n_resamples=0).warnings[0]
    with pytest.raises(TrecsEvalError, match="estimator"):
        features_to_cmmd(x, y, estimator="v-stat")

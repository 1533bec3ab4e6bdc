"""CMMD against an independent NumPy implementation written from the paper and the reference code.

The reference below follows the formulas literally (scipy's pairwise distances, explicit
diagonal handling) and shares no code with ``trecs_eval.metrics.cmmd``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics.cmmd import cmmd_influence, cmmd_result, features_to_cmmd

CMMD_REL_TOL_VS_NUMPY_REFERENCE = 1e-9  # both float64; only summation order differs
SIGMA, SCALE = 10.0, 1000.0  # the paper's constants, restated here on purpose
INFLUENCE_REL_TOL_VS_FINITE_DIFFERENCES = 1e-5  # central differences, step 1e-5: O(step²) error


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


def _weighted_biased(x: np.ndarray, y: np.ndarray, w: np.ndarray, v: np.ndarray) -> float:
    """Biased MMD² of weighted samples (weights sum to 1), from the paper's kernel, ×1000."""
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * SIGMA**2))

    return SCALE * (w @ k(x, x) @ w + v @ k(y, y) @ v - 2 * w @ k(x, y) @ v)


def _numeric_influence(x: np.ndarray, y: np.ndarray, generated_side: bool, eps: float = 1e-5) -> np.ndarray:
    """Central differences of F((1 - eps) P_n + eps delta_i) at eps = 0, item by item."""
    n = len(x) if generated_side else len(y)
    plain_x, plain_y = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    out = np.empty(n)
    for i in range(n):
        values = []
        for e in (eps, -eps):
            w = np.full(n, (1 - e) / n)
            w[i] += e
            values.append(_weighted_biased(x, y, w, plain_y) if generated_side
                          else _weighted_biased(x, y, plain_x, w))
        out[i] = (values[0] - values[1]) / (2 * eps)
    return out


def test_influence_values_are_derivatives_of_the_estimator() -> None:
    rng = np.random.default_rng(4)
    x, y = _unit(rng, 12, 6, 0.5), _unit(rng, 15, 6)
    influence = cmmd_influence(x, y)
    tol = {"rtol": INFLUENCE_REL_TOL_VS_FINITE_DIFFERENCES, "atol": 1e-7}
    assert np.allclose(influence.generated, _numeric_influence(x, y, True), **tol)
    assert np.allclose(influence.reference, _numeric_influence(x, y, False), **tol)


def test_result_interval_and_warnings() -> None:
    rng = np.random.default_rng(5)
    x, y = _unit(rng, 40, 8, 0.6), _unit(rng, 40, 8)
    result = cmmd_result(x, y)
    assert result.ci_low < result.value < result.ci_high and result.params["estimator"] == "biased"
    assert result.value - result.ci_low == pytest.approx(result.ci_high - result.value)  # symmetric
    assert result.warnings == ()
    clustered = cmmd_result(x, y, clusters=[i // 2 for i in range(40)])  # two narratives per image
    assert clustered.params["se"] != result.params["se"]
    assert "not L2-normalized" in cmmd_result(3 * x, y, interval=False).warnings[0]
    with pytest.raises(TrecsEvalError, match="estimator"):
        features_to_cmmd(x, y, estimator="v-stat")

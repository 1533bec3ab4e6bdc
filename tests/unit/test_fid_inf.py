"""FID_inf: the 1/n fit, its extrapolation on a known Gaussian pair, the engine and run wiring."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.test_metrics_engine import _features
from trecs_eval.errors import TrecsEvalError
from trecs_eval.metrics import engine
from trecs_eval.metrics.fid import features_to_fid, features_to_statistics
from trecs_eval.metrics.fid_inf import features_to_fid_inf, fit_inverse_n
from trecs_eval.metrics.registry import checked_params, metric

FIT_ABS_TOL = 1e-9  # exact line through noiseless points


def test_fit_recovers_an_exact_line_in_one_over_n() -> None:
    sizes = np.array([100, 200, 300, 400])
    intercept, slope, se = fit_inverse_n(sizes, 3.0 + 50.0 / sizes)
    assert (intercept, slope) == pytest.approx((3.0, 50.0), abs=FIT_ABS_TOL)
    assert se < FIT_ABS_TOL
    with pytest.raises(TrecsEvalError, match="3 distinct"):
        fit_inverse_n(np.array([100, 100, 100]), np.array([1.0, 1.0, 1.0]))


def test_fid_inf_removes_the_small_sample_bias_of_a_known_pair() -> None:
    rng = np.random.default_rng(0)
    d, n = 16, 600
    shift = 0.25  # population FID = d * shift^2 = 1.0 (equal covariances)
    x, y = rng.normal(shift, 1.0, (n, d)), rng.normal(0.0, 1.0, (n, d))
    found = features_to_fid_inf(x, y, seed=0)
    fid_n = features_to_fid(x, y)[0]
    assert fid_n - 1.0 > 0.2  # FID at n = 600 in 16-d sits well above the population value (0.29 here)
    assert abs(found.value - 1.0) < 0.5 * (fid_n - 1.0)
    assert found.low < found.value < found.high and found.low < 1.0 < found.high
    assert found.sizes[-1] == n and len(found.sizes) == 15 and found.slope > 0
    against_stats = features_to_fid_inf(x, features_to_statistics(y), seed=0)
    assert not against_stats.reference_extrapolated and found.reference_extrapolated
    with pytest.raises(TrecsEvalError, match="fewer than 3"):
        features_to_fid_inf(x[:10], y, seed=0)


def test_engine_and_run_know_fid_inf() -> None:
    declared = metric("fid_inf")  # registered: runs and `trecs-eval metrics` reach it by name
    assert declared.info.features == ("inception",) and "reference" in declared.needs
    assert checked_params("fid_inf", {"n_points": 5})["min_fraction"] == declared.params["min_fraction"]
    gen, ref = _features(1, n=60), _features(2, n=60, shift=0.1)
    (result,) = engine.image_metrics(gen, ref, ["fid_inf"], seed=0, fid_inf_points=5)
    assert result.name == "fid_inf" and not result.higher_is_better
    assert result.ci_low < result.value < result.ci_high
    assert result.params["interval_covers"].startswith("the population FID")
    assert len(result.params["sizes"]) == 5


def test_fid_inf_warns_below_the_feature_dimension() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.1, 1.0, (40, 64)), rng.normal(0.0, 1.0, (40, 64))
    found = features_to_fid_inf(x, y, seed=0, n_points=4)
    assert any("not linear in 1/n" in w for w in found.warnings)
    assert features_to_fid_inf(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), seed=0).warnings == ()

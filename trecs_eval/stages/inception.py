"""Inception-space metrics: FID, KID, IS and FID_inf from one forward pass per image (pool3 + logits).

The numbers and intervals come from :func:`trecs_eval.metrics.engine.image_metrics` (intervals:
:mod:`trecs_eval.metrics.intervals`); this module declares them for the registry (direction,
display name, feature space, parameters, interval).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trecs_eval.metrics import engine, fid_inf, inception_score, kid
from trecs_eval.metrics.fid import INFO as FID_INFO
from trecs_eval.metrics.intervals import ImageClusters
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricResult

SPACE = "inception"
_COMMON = {"n_resamples": engine.DEFAULT_IMAGE_BOOTSTRAP, "alpha": engine.DEFAULT_ALPHA}
_EXTRA = (("is_splits", "splits"), ("kid_subsets", "n_subsets"), ("fid_inf_points", "n_points"),
          ("fid_inf_min_fraction", "min_fraction"))  # engine keyword <- metric parameter


def _compute(name: str) -> Any:
    def compute(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
        extra = {key: params[src] for key, src in _EXTRA if src in params}
        return engine.image_metrics(inputs.features[SPACE], inputs.reference.get(SPACE), [name],
                                    seed=inputs.seed, n_bootstrap=params["n_resamples"],
                                    alpha=params["alpha"], system=inputs.system,
                                    images=ImageClusters.of_inputs(inputs), **extra)[0]

    compute.__name__ = f"compute_{name}"
    return compute


def _info(base: MetricInfo, display_name: str, feature_key: str, interval: str, order: int,
          statistic: str = "") -> MetricInfo:
    return MetricInfo(base.name, base.higher_is_better, base.unit, base.description,
                      display_name=display_name, features=(SPACE,), feature_key=feature_key,
                      interval=interval, column_order=order, statistic=statistic,
                      estimator="set_statistic", missing="unavailable", family="image quality")


FID = Metric(
    _info(FID_INFO, "FID", "inception_pool", "delta method (influence functions) for FID at this n, "
          "symmetric; n_resamples = 0: none", 20, "frechet"),
    _compute("fid"), params=dict(_COMMON), needs=frozenset({"reference"}))
KID = Metric(
    _info(kid.INFO, "KID", "inception_pool", "delta method (U-statistic projections) for the population "
          "MMD², symmetric; n_resamples = 0: none", 40, "kid"),
    _compute("kid"), params={**_COMMON, "n_subsets": kid.DEFAULT_SUBSETS}, needs=frozenset({"reference"}))
IS = Metric(
    _info(inception_score.INFO, "IS", "inception_logits", "t interval over the independent splits "
          "(IS at split size n/splits); n_resamples = 0: none", 10, "inception_score"),
    _compute("is"), params={**_COMMON, "splits": inception_score.DEFAULT_SPLITS})
FID_INF = Metric(
    _info(fid_inf.INFO, "FID-inf", "inception_pool", "delta-method sampling error plus the OLS error of the "
          "intercept, for the population FID", 21),
    _compute("fid_inf"), params={**_COMMON, "n_points": fid_inf.DEFAULT_POINTS,
                                 "min_fraction": fid_inf.DEFAULT_MIN_FRACTION},
    needs=frozenset({"reference"}))

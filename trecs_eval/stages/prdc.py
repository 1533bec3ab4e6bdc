"""Precision, recall, density and coverage (k-NN manifolds; Kynkäänniemi 2019, Naeem 2020) in any
registered vector space: ``features = "inception"`` (default), ``"dinov2"``, ``"clip"``, ...

Generated features against the reference set's, ``nearest_k = 5`` by default; numbers and
intervals are :func:`trecs_eval.metrics.prdc.prdc_results`' (bootstrap of per-item means, the
other set held fixed, resampling images). The four come from one k-NN computation, shared by
the four metrics of one system (:func:`_prdc`). Precision and density are means over the
generated items (per-item values in ``samples.parquet``); recall and coverage are means over
the reference items (no per-item column: their items are not the system's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from trecs_eval.errors import ConfigError
from trecs_eval.metrics import prdc
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA
from trecs_eval.metrics.intervals import ImageClusters
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricResult

DEFAULT_SPACE = "inception"
_PARAMS = {"features": DEFAULT_SPACE, "nearest_k": prdc.DEFAULT_NEAREST_K,
           "n_resamples": prdc.DEFAULT_N_RESAMPLES, "alpha": DEFAULT_ALPHA}
_last: dict[str, Any] = {}  # one system's four results, made once for its four metrics


def vectors(features: Any) -> np.ndarray:
    """(n, d) float array of a vector space's features (``pool`` / ``features`` / the array)."""
    for attribute in ("pool", "features"):
        if isinstance(getattr(features, attribute, None), np.ndarray):
            return getattr(features, attribute)
    if isinstance(features, np.ndarray) and features.ndim == 2:
        return features
    raise ConfigError(f"PRDC needs a vector feature space, got {type(features).__name__}",
                      hint="set the metric's features parameter to inception, clip, clip_cmmd or dinov2")


def _prdc(inputs: MetricInputs, params: Mapping[str, Any]) -> dict[str, MetricResult]:
    space = params["features"]
    fake, real = vectors(inputs.features[space]), vectors(inputs.reference[space])
    key = (inputs.system, id(fake), id(real), tuple(sorted(params.items())), inputs.seed)
    if _last.get("key") != key:
        images = ImageClusters.of_inputs(inputs)
        found = prdc.prdc_results(real, fake, nearest_k=params["nearest_k"], seed=inputs.seed,
                                  n_resamples=params["n_resamples"], alpha=params["alpha"],
                                  fake_ids=list(inputs.item_ids), fake_clusters=images.generated,
                                  real_clusters=images.reference)
        identity = dict(inputs.identities[space])
        status = "uncalibrated" if identity.get("uncalibrated") else "ok"
        # the arrays stay referenced with the key, so their ids cannot be reused while cached
        _last.update(key=key, arrays=(fake, real), results={
            r.name: replace(r, extractor=identity, status=status, params={**r.params, "features": space})
            for r in found})
    return _last["results"]


def _one(name: str) -> Any:
    def compute(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
        return _prdc(inputs, params)[name]

    compute.__name__ = f"compute_{name}"
    return compute


def _metric(name: str, display_name: str, order: int) -> Metric:
    base = prdc.INFOS[name]
    side = prdc.INTERVAL_OVER[name]
    info = MetricInfo(name, base.higher_is_better, base.unit, base.description, display_name=display_name,
                      scope="item" if side == "generated" else "set", features=(DEFAULT_SPACE,),
                      interval=f"seeded percentile bootstrap of the per-item mean over the {side} items, "
                               "the other set fixed, resampling images", column_order=order,
                      family="fidelity/diversity",
                      estimator="per_item_mean" if side == "generated" else "set_statistic",
                      missing="unavailable")
    return Metric(info, _one(name), params=dict(_PARAMS), needs=frozenset({"reference"}),
                  space_param="features")


PRECISION = _metric("precision", "Precision", 70)
RECALL = _metric("recall", "Recall", 71)
DENSITY = _metric("density", "Density", 72)
COVERAGE = _metric("coverage", "Coverage", 73)

"""CLIP-space metrics: CLIPScore, CLIP-S and CLIP R-precision of images against their narratives.

Image embeddings come from the ``clip`` extractor (once per image), narrative embeddings once
per run (:meth:`trecs_eval.features.registry.ClipSpace.texts`, under the text policy). The
numbers are :mod:`trecs_eval.metrics.clip_score`'s and :mod:`trecs_eval.metrics.r_precision`'s;
R-precision also writes each item's rank into ``samples.parquet`` (``r_precision_rank``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, DEFAULT_N_RESAMPLES
from trecs_eval.metrics.clip_score import CLIP_S_INFO, CLIP_SCORE_INFO, compute_clip_score
from trecs_eval.metrics.r_precision import DEFAULT_N_NEGATIVES, R_PRECISION_INFO, compute_r_precision
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricOutput, MetricResult

SPACE = "clip"
_MEAN_BOOTSTRAP = "seeded percentile bootstrap of the mean, resampling images (n_resamples, alpha)"
_COMMON = {"n_resamples": DEFAULT_N_RESAMPLES, "alpha": DEFAULT_ALPHA}


def _common(inputs: MetricInputs) -> dict[str, Any]:
    return {"seed": inputs.seed, "system": inputs.system, "text_info": inputs.texts.info(),
            "extractor": dict(inputs.identities.get(SPACE, {}))}


def _clip_score(name: str) -> Any:
    def compute(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
        images = [n.image_id for n in inputs.narratives]  # narratives of one image resample together
        return compute_clip_score(list(inputs.item_ids), inputs.features[SPACE], inputs.texts.embeddings,
                                  name=name, clusters=images, **params, **_common(inputs))

    compute.__name__ = f"compute_{name}"
    return compute


def _r_precision(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricOutput:
    image_ids = [n.image_id for n in inputs.narratives]
    found = compute_r_precision(list(inputs.item_ids), image_ids, inputs.features[SPACE],
                                inputs.texts.embeddings, **params, **_common(inputs))
    return MetricOutput(found.metric, {"r_precision_rank": {k: float(v) for k, v in found.ranks.items()}})


def _info(base: MetricInfo, display_name: str, order: int, interval: str = _MEAN_BOOTSTRAP) -> MetricInfo:
    return MetricInfo(base.name, base.higher_is_better, base.unit, base.description,
                      display_name=display_name, scope="item", features=(SPACE,), feature_key="clip_image",
                      interval=interval, column_order=order, estimator="per_item_mean", missing="exclude",
                      family="text alignment")


CLIP_SCORE = Metric(_info(CLIP_SCORE_INFO, "CLIPScore", 50), _clip_score("clip_score"), params=dict(_COMMON),
                    needs=frozenset({"text"}))
CLIP_S = Metric(_info(CLIP_S_INFO, "CLIP-S", 51), _clip_score("clip_s"), params=dict(_COMMON),
                needs=frozenset({"text"}))
R_PRECISION = Metric(
    _info(R_PRECISION_INFO, "R-precision", 30,
          "seeded percentile bootstrap of the hit rate, resampling images; negatives drawn by the seed"),
    _r_precision, params={**_COMMON, "n_negatives": DEFAULT_N_NEGATIVES, "allow_fewer_negatives": False},
    needs=frozenset({"text"}))

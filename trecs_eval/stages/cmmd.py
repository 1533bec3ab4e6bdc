"""CMMD-CLIP-space metric: CMMD (Jayasumana et al. 2024), RBF-kernel MMD² of CLIP ViT-L/14@336
image embeddings (σ = 10, ×1000), the biased estimator of the reference code by default.

The number and its delta-method interval are :func:`trecs_eval.metrics.cmmd.cmmd_result`'s; the
embeddings come from the ``clip_cmmd`` extractor (``extractors.cmmd_clip_model``). CMMD is
*defined* on ViT-L-14-336 with the ``openai`` weights: a result from another model (a small
stand-in) or from random weights says so in a warning and in ``params["defines_cmmd"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trecs_eval.features.cmmd_clip import CMMD_CLIP_MODEL, CMMD_CLIP_PRETRAINED
from trecs_eval.metrics import cmmd
from trecs_eval.metrics.intervals import ImageClusters
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricResult

SPACE = "clip_cmmd"


def defines_cmmd(identity: Mapping[str, Any]) -> bool:
    """The embedder CMMD is defined on: ViT-L-14-336 with the openai tag or a local copy, not random."""
    extra = identity.get("extra", {})
    return (extra.get("model") == CMMD_CLIP_MODEL and not identity.get("uncalibrated")
            and extra.get("pretrained") in (CMMD_CLIP_PRETRAINED, "file"))


def _cmmd(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
    identity = dict(inputs.identities[SPACE])
    images = ImageClusters.of_inputs(inputs)  # narratives of one image are one sampling unit
    found = cmmd.cmmd_result(inputs.features[SPACE], inputs.reference[SPACE], alpha=params["alpha"],
                             estimator=params["estimator"], clusters=images.generated,
                             interval=params["interval"], reference_clusters=images.reference)
    defines, extra = defines_cmmd(identity), identity.get("extra", {})
    warnings = found.warnings if defines else (*found.warnings, (
        f"embeddings from {extra.get('model')} ({extra.get('pretrained')}): "
        "CMMD is defined on CLIP ViT-L-14-336/openai; not comparable to published values"))
    return replace(found, extractor=identity, seed=inputs.seed, warnings=warnings,
                   status="uncalibrated" if identity.get("uncalibrated") else "ok",
                   params={**found.params, "defines_cmmd": defines})


INFO = MetricInfo(cmmd.INFO.name, cmmd.INFO.higher_is_better, cmmd.INFO.unit, cmmd.INFO.description,
                  display_name="CMMD", features=(SPACE,), feature_key="clip_cmmd_image",
                  interval="delta method on the estimator's influence values (CMMD at this n), "
                           "resampling images; interval = false: none", column_order=23,
                  estimator="set_statistic", missing="unavailable", family="image quality")
CMMD = Metric(INFO, _cmmd, params={"alpha": cmmd.DEFAULT_ALPHA, "estimator": cmmd.DEFAULT_ESTIMATOR,
                                   "interval": True}, needs=frozenset({"reference"}))

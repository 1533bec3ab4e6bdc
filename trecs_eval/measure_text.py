"""CLIP stage of a run: narrative embeddings once, image embeddings per system, then CLIPScore,
CLIP-S and CLIP R-precision (per-sample values, and R-precision ranks for samples.parquet).

The metric functions are the CLIP metric modules'; this stage calls them directly rather than
through :func:`trecs_eval.metrics.engine.text_metrics` because the run needs the image
embeddings (``features/{system}.npz``) and the per-item ranks, and embeds the narratives once
for all systems.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trecs_eval.config import RunConfig
from trecs_eval.data.evalset import EvalItem
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.metrics.types import MetricResult

log = logging.getLogger(__name__)

CLIP_SCORE_PARAMS = ("n_resamples", "alpha")
R_PRECISION_PARAMS = ("n_negatives", "n_resamples", "alpha", "allow_fewer_negatives")


@dataclass
class StageResult:
    """Metrics of one extractor stage, its identity, and per-system feature arrays."""

    metrics: list[MetricResult] = field(default_factory=list)
    identity: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    extra_columns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def text_metrics_stage(config: RunConfig, items: Sequence[EvalItem], outputs: Sequence[SystemOutput],
                       wanted: Mapping[str, Mapping[str, Any]], extractors: Any) -> StageResult:
    """CLIP features and text-image metrics of every system (see the module docstring)."""
    from trecs_eval.measure import checked_params
    from trecs_eval.metrics.clip_score import compute_clip_score
    from trecs_eval.metrics.r_precision import compute_r_precision

    log.info("CLIP %s: embedding %d narratives (text policy %s)", config.extractors.clip_model, len(items),
             config.extractors.text_policy)
    texts = extractors.clip_texts([it.narrative for it in items])
    identity = extractors.clip.identity.to_dict()
    ids = [it.item_id for it in items]
    image_ids = [it.narrative.image_id for it in items]
    stage = StageResult(identity=identity)
    ranks: dict[str, dict[str, float]] = {}
    for out in outputs:
        log.info("CLIP: images of %s", out.system)
        images = extractors.clip_images([out.images[i] for i in ids])
        stage.arrays[out.system] = {"clip_image": images}
        common = {"seed": config.seed, "extractor": identity, "system": out.system, "text_info": texts.info()}
        for name in ("clip_score", "clip_s"):
            if name in wanted:
                params = checked_params(name, wanted[name], CLIP_SCORE_PARAMS)
                stage.metrics.append(compute_clip_score(ids, images, texts.embeddings, name=name, **params,
                                                        clusters=image_ids, **common))
        if "r_precision" in wanted:
            params = checked_params("r_precision", wanted["r_precision"], R_PRECISION_PARAMS)
            found = compute_r_precision(ids, image_ids, images, texts.embeddings, **params, **common)
            stage.metrics.append(found.metric)
            ranks[out.system] = {k: float(v) for k, v in found.ranks.items()}
    if ranks:
        stage.extra_columns["r_precision_rank"] = ranks
    return stage

"""Inception stage of a run: one forward pass per image (pool3 + logits, cached), then FID, KID and
IS of every system through the metrics engine (:func:`trecs_eval.metrics.engine.image_metrics`).

Reference set (``[reference] kind``): ``eval`` = the evaluation items' own reference images,
``images`` = a folder (e.g. a disjoint real split), ``stats`` = a saved statistics file (FID
only; its extractor identity must equal this run's). Reference features come from the feature
cache, so they are computed once per extractor identity however many runs and systems use them.

CIs: seeded bootstraps that resample the generated images (reference fixed) and recompute the
whole metric; ``n_resamples`` per metric, default
:data:`trecs_eval.metrics.engine.DEFAULT_IMAGE_BOOTSTRAP`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trecs_eval.config import RunConfig
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import InputError
from trecs_eval.features.images import list_images
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.measure_text import StageResult
from trecs_eval.metrics import engine
from trecs_eval.rundir import FEATURES_DIR, write_features_npz

log = logging.getLogger(__name__)

# config params of each image metric -> keyword of engine.image_metrics
PARAM_NAMES: dict[str, dict[str, str]] = {
    "fid": {"n_resamples": "n_bootstrap", "alpha": "alpha"},
    "kid": {"n_resamples": "n_bootstrap", "alpha": "alpha", "n_subsets": "kid_subsets"},
    "is": {"n_resamples": "n_bootstrap", "alpha": "alpha", "splits": "is_splits"},
}


def image_metrics_stage(config: RunConfig, run_dir: Path, items: Sequence[EvalItem],
                        outputs: Sequence[SystemOutput], wanted: Mapping[str, Mapping[str, Any]],
                        extractors: engine.FeatureExtractors) -> StageResult:
    """Inception features of the reference and every system, and FID / KID / IS."""
    from trecs_eval.measure import checked_params

    names = [n for n in engine.IMAGE_METRICS if n in wanted]
    kwargs = {n: {PARAM_NAMES[n][k]: v for k, v in checked_params(n, wanted[n], list(PARAM_NAMES[n])).items()}
              for n in names}
    needs_reference = bool({"fid", "kid"} & set(names))
    reference = reference_features(config, items, extractors, run_dir) if needs_reference else None
    stage = StageResult()
    ids = [it.item_id for it in items]
    for out in outputs:
        log.info("Inception: images of %s", out.system)
        feats = extractors.inception([out.images[i] for i in ids])
        log.info("Inception %s: %d cached, %d computed", out.system, feats.cache_hits, feats.cache_misses)
        stage.arrays[out.system] = {"inception_pool": feats.pool, "inception_logits": feats.logits}
        for name in names:
            stage.metrics += engine.image_metrics(feats, reference, [name], seed=config.seed,
                                                  system=out.system, **kwargs[name])
    stage.identity = extractors.identities().get("inception", {})
    return stage


def reference_features(config: RunConfig, items: Sequence[EvalItem], extractors: engine.FeatureExtractors,
                       run_dir: Path) -> Any:
    """The reference set's Inception features (cached; written to ``features/reference.npz``), or
    saved statistics for ``kind = "stats"``."""
    spec = config.reference
    if spec.kind == "stats":
        assert spec.stats is not None
        return engine.ReferenceStatistics.load(str(spec.stats))
    if spec.kind == "images":
        assert spec.images is not None
        paths = list_images(spec.images)
        ids = [p.stem for p in paths]
    else:
        paths = [it.reference_image for it in items if it.reference_image is not None]
        ids = [it.item_id for it in items if it.reference_image is not None]
    if len(paths) < 2:
        raise InputError(f"the reference set has {len(paths)} images; FID and KID need more",
                         path=str(spec.images) if spec.images else None, field="reference")
    log.info("Inception: %d reference images (%s)", len(paths), spec.kind)
    feats = extractors.inception(paths)
    write_features_npz(run_dir / FEATURES_DIR / "reference.npz", ids,
                       {"inception_pool": feats.pool, "inception_logits": feats.logits})
    return feats

"""Inception stage of a run: one forward pass per image (pool3 + logits, cached), then FID, KID and
IS of every system.

Reference set (``[reference] kind``): ``eval`` = the evaluation items' own reference images,
``images`` = a folder (e.g. a disjoint real split), ``stats`` = a saved statistics file (FID
only; its extractor identity must equal this run's). Reference features come from the feature
cache, so they are computed once per extractor identity however many runs and systems use them.

Values and CIs come from :func:`trecs_eval.metrics.engine.image_metrics` (seeded percentile
bootstraps over the generated images, reference fixed; FID and KID resamples through the exact
factorised statistics of :mod:`trecs_eval.metrics.resample`).
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
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.measure_text import StageResult
from trecs_eval.metrics import engine
from trecs_eval.metrics.types import MetricResult
from trecs_eval.rundir import FEATURES_DIR, write_features_npz

log = logging.getLogger(__name__)

PARAMS: dict[str, tuple[str, ...]] = {
    "fid": ("n_resamples", "alpha"), "kid": ("n_resamples", "alpha", "n_subsets"),
    "is": ("n_resamples", "alpha", "splits"), "fid_inf": ("n_resamples", "alpha", "n_points", "min_fraction")}


def image_metrics_stage(config: RunConfig, run_dir: Path, items: Sequence[EvalItem],
                        outputs: Sequence[SystemOutput], wanted: Mapping[str, Mapping[str, Any]],
                        extractors: engine.FeatureExtractors) -> StageResult:
    """Inception features of the reference and every system, and FID / KID / IS."""
    from trecs_eval.measure import checked_params

    names = [n for n in engine.IMAGE_METRICS if n in wanted]
    params = {n: {"n_resamples": engine.DEFAULT_IMAGE_BOOTSTRAP, "alpha": engine.DEFAULT_ALPHA,
                  **checked_params(n, wanted[n], PARAMS[n])} for n in names}
    needs_reference = bool({"fid", "kid", "fid_inf"} & set(names))
    reference = reference_features(config, items, extractors, run_dir) if needs_reference else None
    stage = StageResult()
    ids = [it.item_id for it in items]
    for out in outputs:
        log.info("Inception: images of %s", out.system)
        feats = extractors.inception([out.images[i] for i in ids])
        log.info("Inception %s: %d cached, %d computed", out.system, feats.cache_hits, feats.cache_misses)
        stage.arrays[out.system] = {"inception_pool": feats.pool, "inception_logits": feats.logits}
        for name in names:
            stage.metrics.append(image_metric(name, feats, reference, params[name], config.seed, out.system))
    stage.identity = extractors.identities().get("inception", {})
    return stage


def image_metric(name: str, feats: InceptionFeatures, reference: Any, params: Mapping[str, Any], seed: int,
                 system: str) -> MetricResult:
    """One of FID / KID / IS for one system, through the metrics engine."""
    extra = {key: params[src] for key, src in (("is_splits", "splits"), ("kid_subsets", "n_subsets"),
                                               ("fid_inf_points", "n_points"),
                                               ("fid_inf_min_fraction", "min_fraction"))
             if src in params}
    return engine.image_metrics(feats, reference, [name], seed=seed, n_bootstrap=params["n_resamples"],
                                alpha=params["alpha"], system=system, **extra)[0]


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

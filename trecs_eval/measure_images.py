"""Inception stage of a run: one forward pass per image (pool3 + logits, cached), then FID, KID and
IS of every system, each with a seeded bootstrap CI over the system's images.

Reference set (``[reference] kind``): ``eval`` = the evaluation items' own reference images,
``images`` = a folder (e.g. a disjoint real split), ``stats`` = a saved statistics file (FID
only; its extractor identity must equal this run's). Reference features come from the cache,
so they are computed once per extractor identity, however many runs and systems use them.

CIs: FID, KID and IS are statistics of a *set*, so the bootstrap resamples the generated images
(the reference set is fixed) and recomputes the whole metric on each resample
(:func:`trecs_eval.metrics.bootstrap.bootstrap_statistic_ci`). ``n_resamples`` defaults to
:data:`IMAGE_BOOTSTRAP_RESAMPLES` (each resample is a full FID or KID); set it per metric.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trecs_eval.config import RunConfig
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import ConfigError, InputError
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.images import list_images
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.measure_text import StageResult
from trecs_eval.metrics.types import MetricResult
from trecs_eval.rundir import FEATURES_DIR, write_features_npz

log = logging.getLogger(__name__)

IMAGE_BOOTSTRAP_RESAMPLES = 100
FID_PARAMS = ("n_resamples", "alpha")
KID_PARAMS = ("n_resamples", "alpha", "n_subsets", "subset_size")
IS_PARAMS = ("n_resamples", "alpha", "splits")


class Reference:
    """Reference features (or only statistics, for ``kind = "stats"``)."""

    def __init__(self, ids: list[str], pool: np.ndarray | None, logits: np.ndarray | None,
                 stats: Any, source: str) -> None:
        self.ids, self.pool, self.logits, self.stats, self.source = ids, pool, logits, stats, source


def image_metrics_stage(config: RunConfig, run_dir: Path, items: Sequence[EvalItem],
                        outputs: Sequence[SystemOutput], wanted: Mapping[str, Mapping[str, Any]],
                        cache: FeatureCache, progress: bool = True) -> StageResult:
    """Inception features of the reference and every system, and FID / KID / IS."""
    from trecs_eval.features.inception import InceptionExtractor
    from trecs_eval.measure import UNCALIBRATED_WEIGHTS_SEED

    ex = config.extractors
    inception = InceptionExtractor(
        inception_weights=str(ex.inception_weights) if ex.inception_weights is not None else None,
        uncalibrated=ex.uncalibrated, seed=UNCALIBRATED_WEIGHTS_SEED, preprocessing=ex.preprocessing,
        device=config.device, batch_size=ex.batch_size, progress=progress, cache=cache)
    identity = inception.identity.to_dict()
    reference = reference_features(config, items, inception)
    if reference.pool is not None:
        arrays = {"inception_pool": reference.pool, "inception_logits": reference.logits}
        write_features_npz(run_dir / FEATURES_DIR / "reference.npz", reference.ids, arrays)
    stage = StageResult(identity=identity)
    fid_ref = None
    ids = [it.item_id for it in items]
    for out in outputs:
        log.info("Inception: images of %s", out.system)
        feats = inception.extract([out.images[i] for i in ids])
        log.info("Inception %s: %d cached, %d computed", out.system, feats.cache_hits, feats.cache_misses)
        stage.arrays[out.system] = {"inception_pool": feats.pool, "inception_logits": feats.logits}
        found: list[MetricResult] = []
        if "fid" in wanted:
            if fid_ref is None:
                fid_ref = _fid_reference(reference)
            found.append(fid_result(feats.pool, fid_ref, wanted["fid"], config.seed))
        if "kid" in wanted:
            found.append(kid_result(feats.pool, reference, wanted["kid"], config.seed))
        if "is" in wanted:
            found.append(is_result(feats.logits, wanted["is"], config.seed))
        stage.metrics += [_stamp(m, out.system, identity, reference.source) for m in found]
    return stage


def reference_features(config: RunConfig, items: Sequence[EvalItem], inception: Any) -> Reference:
    """The reference set's Inception features (cached), or saved statistics."""
    spec = config.reference
    if spec.kind == "stats":
        from trecs_eval.metrics.fid import check_identity, load_statistics

        assert spec.stats is not None
        stats, found = load_statistics(spec.stats)
        check_identity(inception.identity, found, str(spec.stats))
        return Reference([], None, None, stats, f"stats:{spec.stats}")
    if spec.kind == "images":
        assert spec.images is not None
        paths = list_images(spec.images)
        ids = [p.stem for p in paths]
        source = f"images:{spec.images}"
    else:
        paths = [it.reference_image for it in items if it.reference_image is not None]
        ids = [it.item_id for it in items if it.reference_image is not None]
        source = "eval"
    if len(paths) < 2:
        raise InputError(f"the reference set has {len(paths)} images; FID/KID need more",
                         path=str(spec.images) if spec.images else None, field="reference")
    log.info("Inception: %d reference images (%s)", len(paths), source)
    feats = inception.extract(paths)
    return Reference(ids, feats.pool, feats.logits, None, source)


def _fid_reference(reference: Reference) -> Any:
    from trecs_eval.metrics.fid import FidAgainstReference, features_to_statistics

    stats = reference.stats if reference.stats is not None else features_to_statistics(reference.pool)
    return FidAgainstReference(stats)


def _stamp(m: MetricResult, system: str, identity: dict[str, Any], source: str) -> MetricResult:
    from dataclasses import replace

    status = "uncalibrated" if identity.get("uncalibrated") else m.status
    params = {**m.params, "reference": source}
    return replace(m, system=system, extractor=identity, status=status, params=params)


def _params(metric: str, params: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    from trecs_eval.measure import checked_params

    defaults = {"n_resamples": IMAGE_BOOTSTRAP_RESAMPLES, "alpha": 0.05}
    return {**defaults, **checked_params(metric, params, allowed)}


def fid_result(pool: np.ndarray, fid_ref: Any, params: Mapping[str, Any], seed: int) -> MetricResult:
    """FID of ``pool`` against the reference, CI by resampling the generated images."""
    from trecs_eval.metrics import fid
    from trecs_eval.metrics.bootstrap import bootstrap_statistic_ci

    p = _params("fid", params, FID_PARAMS)
    value, info = fid.statistics_to_fid(fid.features_to_statistics(pool), fid_ref.reference)
    low, high = bootstrap_statistic_ci(len(pool), lambda idx: fid_ref(pool[idx]), p["n_resamples"], seed,
                                       p["alpha"])
    return MetricResult("fid", value, fid.INFO.higher_is_better, len(pool), low, high, seed=seed,
                        warnings=info.warnings, params={**p, "method": info.method,
                                                        "reference_n": fid_ref.reference.n})


def kid_result(pool: np.ndarray, reference: Reference, params: Mapping[str, Any], seed: int) -> MetricResult:
    """KID (mean ± std over subsets), CI by resampling the generated images."""
    from trecs_eval.metrics import kid
    from trecs_eval.metrics.bootstrap import bootstrap_statistic_ci

    if reference.pool is None:
        raise ConfigError("KID needs reference images, not saved statistics",
                          hint="set reference.kind = 'images' or 'eval', or drop kid")
    p = _params("kid", params, KID_PARAMS)
    n_subsets, size = p.get("n_subsets", kid.DEFAULT_SUBSETS), p.get("subset_size")
    kernels = kid.KidKernels(pool, reference.pool)
    point = kernels.kid(seed=seed, n_subsets=n_subsets, subset_size=size)
    low, high = bootstrap_statistic_ci(
        len(pool), lambda idx: kernels.kid(seed=seed, n_subsets=n_subsets, subset_size=size, rows1=idx).mean,
        p["n_resamples"], seed, p["alpha"])
    return MetricResult("kid", point.mean, kid.INFO.higher_is_better, len(pool), low, high, std=point.std,
                        seed=seed, params={**p, "n_subsets": n_subsets, "subset_size": point.subset_size})


def is_result(logits: np.ndarray, params: Mapping[str, Any], seed: int) -> MetricResult:
    """Inception Score (mean ± std over splits), CI by resampling the images."""
    from trecs_eval.metrics import inception_score
    from trecs_eval.metrics.bootstrap import bootstrap_statistic_ci

    p = _params("is", params, IS_PARAMS)
    splits = p.get("splits", inception_score.DEFAULT_SPLITS)
    point = inception_score.logits_to_inception_score(logits, seed=seed, splits=splits)
    low, high = bootstrap_statistic_ci(
        len(logits), lambda idx: inception_score.logits_to_inception_score(logits[idx], seed=seed,
                                                                            splits=splits).mean,
        p["n_resamples"], seed, p["alpha"])
    return MetricResult("is", point.mean, inception_score.INFO.higher_is_better, len(logits), low, high,
                        std=point.std, seed=seed, params={**p, "splits": splits})

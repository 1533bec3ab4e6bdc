"""Inception stage of a run: one forward pass per image (pool3 + logits, cached), then FID, KID and
IS of every system.

Reference set (``[reference] kind``): ``eval`` = the evaluation items' own reference images,
``images`` = a folder (e.g. a disjoint real split), ``stats`` = a saved statistics file (FID
only; its extractor identity must equal this run's). Reference features come from the feature
cache, so they are computed once per extractor identity however many runs and systems use them.

Values: FID by :func:`trecs_eval.metrics.fid.features_to_fid`, KID by
:class:`trecs_eval.metrics.kid.KidKernels`, IS through :func:`trecs_eval.metrics.engine.image_metrics`.
CIs: seeded percentile bootstraps over the generated images, reference fixed, each resample a
whole metric (``n_resamples`` per metric, default :data:`engine.DEFAULT_IMAGE_BOOTSTRAP`). FID
and KID resamples use the exact factorised statistics of :mod:`reports.paired` (the regression
gate's): with ``S_ref = WᵀW`` (W = centred reference / sqrt(m-1)), ``tr sqrt(S_g S_ref)`` is
the nuclear norm of ``X_c Wᵀ / sqrt(n-1)``, an n×n eigenproblem per resample instead of an
n×d×d product (``benchmarks/bench_harness.py``, n = 300, 20 resamples: FID 0.13 s vs 2.05 s,
KID 0.11 s vs 1.74 s wall; same values and intervals).
KID resamples are the unbiased MMD² of the resample against the whole reference set, which is
the point estimate's definition whenever its subsets are the whole sets (n = m ≤ 1000).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from trecs_eval.config import RunConfig
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import InputError
from trecs_eval.features.images import list_images
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.measure_text import StageResult
from trecs_eval.metrics import engine, fid, kid
from trecs_eval.metrics.bootstrap import bootstrap_statistic_ci
from trecs_eval.metrics.types import MetricResult
from trecs_eval.rundir import FEATURES_DIR, write_features_npz

log = logging.getLogger(__name__)

PARAMS: dict[str, tuple[str, ...]] = {
    "fid": ("n_resamples", "alpha"), "kid": ("n_resamples", "alpha", "n_subsets"),
    "is": ("n_resamples", "alpha", "splits")}


def image_metrics_stage(config: RunConfig, run_dir: Path, items: Sequence[EvalItem],
                        outputs: Sequence[SystemOutput], wanted: Mapping[str, Mapping[str, Any]],
                        extractors: engine.FeatureExtractors) -> StageResult:
    """Inception features of the reference and every system, and FID / KID / IS."""
    from trecs_eval.measure import checked_params

    names = [n for n in engine.IMAGE_METRICS if n in wanted]
    params = {n: {"n_resamples": engine.DEFAULT_IMAGE_BOOTSTRAP, "alpha": engine.DEFAULT_ALPHA,
                  **checked_params(n, wanted[n], PARAMS[n])} for n in names}
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
            stage.metrics.append(image_metric(name, feats, reference, params[name], config.seed, out.system))
    stage.identity = extractors.identities().get("inception", {})
    return stage


def image_metric(name: str, feats: InceptionFeatures, reference: Any, params: Mapping[str, Any], seed: int,
                 system: str) -> MetricResult:
    """One of FID / KID / IS for one system, stamped like the engine stamps its results."""
    n_resamples, alpha = params["n_resamples"], params["alpha"]
    if name == "is" or isinstance(reference, engine.ReferenceStatistics):
        extra = {"is_splits": params["splits"]} if "splits" in params else {}
        return engine.image_metrics(feats, reference, [name], seed=seed, n_bootstrap=n_resamples, alpha=alpha,
                                    system=system, **extra)[0]
    fid.check_identity(feats.identity, reference.identity, "reference features")
    if name == "fid":
        result = fid_with_ci(feats.pool, reference.pool, n_resamples, alpha, seed)
    else:
        result = kid_with_ci(feats.pool, reference.pool, params.get("n_subsets", kid.DEFAULT_SUBSETS),
                             n_resamples, alpha, seed)
    status = "uncalibrated" if feats.identity.uncalibrated else "ok"
    stamp = {"n_bootstrap": n_resamples, "alpha": alpha, "preprocessing": feats.identity.preprocessing,
             "images": feats.report.to_dict()}
    return replace(result, system=system, extractor=feats.identity.to_dict(), status=status,
                   params={**result.params, **stamp})


def fid_with_ci(pool: np.ndarray, ref_pool: np.ndarray, n_resamples: int, alpha: float,
                seed: int) -> MetricResult:
    """FID of ``pool`` vs ``ref_pool`` with a bootstrap CI over the rows of ``pool``."""
    from reports.paired import ReferenceSet, fid_statistic

    value, info = fid.features_to_fid(pool, ref_pool)
    low, high = (bootstrap_statistic_ci(len(pool), fid_statistic(pool, ReferenceSet(ref_pool)), n_resamples,
                                        seed, alpha) if n_resamples > 0 else (np.nan, np.nan))
    return MetricResult("fid", value, fid.INFO.higher_is_better, len(pool), low, high, seed=seed,
                        warnings=info.warnings,
                        params={"method": info.method, "reference_n": len(ref_pool),
                                "negative_eigenvalues_clipped": info.negative_eigenvalues})


def kid_with_ci(pool: np.ndarray, ref_pool: np.ndarray, n_subsets: int, n_resamples: int, alpha: float,
                seed: int) -> MetricResult:
    """KID (mean ± std over subsets) with a bootstrap CI over the rows of ``pool``."""
    from reports.paired import ReferenceSet, kid_statistic

    point = kid.KidKernels(pool, ref_pool).kid(seed=seed, n_subsets=n_subsets)
    low, high = (bootstrap_statistic_ci(len(pool), kid_statistic(pool, ReferenceSet(ref_pool)), n_resamples,
                                        seed, alpha) if n_resamples > 0 else (np.nan, np.nan))
    return MetricResult("kid", point.mean, kid.INFO.higher_is_better, len(pool), low, high, std=point.std,
                        seed=seed, params={"n_subsets": n_subsets, "subset_size": point.subset_size,
                                           "ci_resamples": "whole reference set"})


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

"""The features and metrics stage of a run: each forward pass once, every metric of every system.

* Inception (one pass: pool3 + logits) for FID, KID and IS, CLIP image embeddings for
  CLIPScore / R-precision, CLIP text embeddings of the narratives once for all systems. All
  three go through the content-addressed feature cache, so a resumed or extended run computes
  features only for new images. Reference features (``reference.kind``) are cached the same
  way: computed once per extractor identity.
* Per-item features are written to ``RUN/features/{system}.npz`` and ``RUN/features/reference.npz``.
* Label-canvas metrics for the systems that return canvases.

Metric names (config ``[[metrics]] name``): see :data:`METRIC_NAMES`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trecs_eval.config import RunConfig
from trecs_eval.data.evalset import EvalItem
from trecs_eval.device import resolve_device
from trecs_eval.errors import ConfigError, UnknownNameError, suggest
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.identity import library_versions
from trecs_eval.generation.protocol import Generator
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.metrics.types import MetricResult
from trecs_eval.rundir import FEATURES_DIR, write_features_npz

log = logging.getLogger(__name__)

IMAGE_METRICS = ("fid", "kid", "is", "fid_inf")
TEXT_METRICS = ("clip_score", "clip_s", "r_precision")
CANVAS_METRICS = ("trace_canvas_accuracy", "canvas_pixel_accuracy", "canvas_miou")
METRIC_NAMES = IMAGE_METRICS + TEXT_METRICS + CANVAS_METRICS
CANVAS_PARAMS = ("n_resamples",)
# Random weights for --uncalibrated-weights use one fixed seed, whatever the run seed, so that all
# uncalibrated runs share one extractor identity (comparable, and cached once).
UNCALIBRATED_WEIGHTS_SEED = 0


@dataclass(frozen=True)
class Measurements:
    """Every metric result of the run plus what produced them."""

    metrics: list[MetricResult]
    extractors: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    uncalibrated: bool = False
    extra_columns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def check_metric_names(config: RunConfig) -> None:
    """Unknown metric names fail before any work, with a suggestion."""
    for spec in config.metrics:
        if spec.name not in METRIC_NAMES:
            raise UnknownNameError(f"unknown metric {spec.name!r}{suggest(spec.name, METRIC_NAMES)}")


def measure(config: RunConfig, run_dir: Path, items: Sequence[EvalItem], outputs: Sequence[SystemOutput],
            generators: Sequence[Generator], progress: bool = True) -> Measurements:
    """Extract features, write ``features/*.npz`` and compute every configured metric."""
    check_metric_names(config)
    wanted = {m.name: dict(m.params) for m in config.metrics}
    extractors = feature_extractors(config, progress)
    results: list[MetricResult] = []
    identities: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    extra: dict[str, dict[str, dict[str, float]]] = {}
    arrays: dict[str, dict[str, np.ndarray]] = {o.system: {} for o in outputs}
    if any(name in wanted for name in IMAGE_METRICS):
        from trecs_eval.measure_images import image_metrics_stage

        stage = image_metrics_stage(config, run_dir, items, outputs, wanted, extractors)
        results += stage.metrics
        identities["inception"] = stage.identity
        warnings += stage.warnings
        for system, feats in stage.arrays.items():
            arrays[system].update(feats)
    if any(name in wanted for name in TEXT_METRICS):
        from trecs_eval.measure_text import text_metrics_stage

        stage = text_metrics_stage(config, items, outputs, wanted, extractors)
        results += stage.metrics
        identities["clip"] = stage.identity
        warnings += stage.warnings
        extra.update(stage.extra_columns)
        for system, feats in stage.arrays.items():
            arrays[system].update(feats)
    item_ids = [it.item_id for it in items]
    for system, feats in arrays.items():
        if feats:
            write_features_npz(run_dir / FEATURES_DIR / f"{system}.npz", item_ids, feats)
    if any(name in wanted for name in CANVAS_METRICS):
        results += canvas_metrics(config, items, outputs, generators, wanted)
    uncalibrated = any(e.get("uncalibrated") for e in identities.values())
    return Measurements(results, identities, library_versions(), warnings, uncalibrated, extra)


def feature_extractors(config: RunConfig, progress: bool = True) -> Any:
    """The metrics engine's extractors for this run's ``[extractors]`` settings (one cache)."""
    from trecs_eval.metrics.engine import ExtractorSettings, FeatureExtractors

    ex = config.extractors
    settings = ExtractorSettings(
        device=resolve_device(config.device), batch_size=ex.batch_size,
        inception_weights=str(ex.inception_weights) if ex.inception_weights is not None else None,
        preprocessing=ex.preprocessing, clip_model=ex.clip_model, clip_pretrained=ex.clip_pretrained,
        text_policy=ex.text_policy, uncalibrated=ex.uncalibrated, seed=UNCALIBRATED_WEIGHTS_SEED,
        progress=progress)
    return FeatureExtractors(settings, FeatureCache())


def canvas_metrics(config: RunConfig, items: Sequence[EvalItem], outputs: Sequence[SystemOutput],
                   generators: Sequence[Generator],
                   wanted: Mapping[str, Mapping[str, Any]]) -> list[MetricResult]:
    """Trace-canvas accuracy, canvas pixel accuracy and mIoU of every system that returns canvases.

    Systems without canvases get no canvas metric (not applicable, not a failure)."""
    from trecs_eval.metrics import label_canvas

    results = []
    for out, generator in zip(outputs, generators, strict=True):
        if not generator.capabilities.returns_canvas:
            continue
        canvases = {it.item_id: np.asarray(Image.open(out.canvases[it.item_id])) for it in items}
        found: list[MetricResult] = []
        if "trace_canvas_accuracy" in wanted:
            params = checked_params("trace_canvas_accuracy", wanted["trace_canvas_accuracy"], CANVAS_PARAMS)
            found.append(label_canvas.trace_canvas_accuracy(items, canvases, seed=config.seed, **params))
        if "canvas_pixel_accuracy" in wanted or "canvas_miou" in wanted:
            params = {**wanted.get("canvas_pixel_accuracy", {}), **wanted.get("canvas_miou", {})}
            params = checked_params("canvas_pixel_accuracy/canvas_miou", params, CANVAS_PARAMS)
            segmentation = label_canvas.segmentation_metrics(items, canvases, seed=config.seed, **params)
            found += [r for r in segmentation if r.name in wanted]
        results += [replace(r, system=out.system) for r in found]
    return results


def checked_params(metric: str, params: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    """A metric's config params, refusing unknown keys with a suggestion."""
    for key in params:
        if key not in allowed:
            raise ConfigError(f"metric {metric}: unknown parameter {key!r}{suggest(key, allowed)}")
    return dict(params)


def sample_rows(run_dir: Path, items: Sequence[EvalItem], outputs: Sequence[SystemOutput],
                metrics: Sequence[MetricResult],
                extra_columns: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
                ) -> list[dict[str, Any]]:
    """One row per (system, item): paths relative to the run, narrative metadata and every
    per-sample score (column = metric name; ``extra_columns`` adds e.g. ``r_precision_rank``)."""
    per_sample: dict[tuple[str, str], dict[str, float]] = {}
    for m in metrics:
        for item_id, value in m.per_sample.items():
            per_sample.setdefault((m.system, item_id), {})[m.name] = value
    for column, by_system in (extra_columns or {}).items():
        for system, values in by_system.items():
            for item_id, value in values.items():
                per_sample.setdefault((system, item_id), {})[column] = value
    rows = []
    for out in outputs:
        for it in items:
            canvas = out.canvases.get(it.item_id)
            rows.append({
                "item_id": it.item_id,
                "system": out.system,
                "image_path": str(out.images[it.item_id].relative_to(run_dir)),
                "canvas_path": str(canvas.relative_to(run_dir)) if canvas is not None else None,
                "reference_path": str(it.reference_image) if it.reference_image is not None else None,
                "narrative": it.narrative.caption,
                "n_words": len(it.narrative.words),
                "n_trace_points": len(it.narrative.trace_array()),
                **per_sample.get((out.system, it.item_id), {}),
            })
    return rows

"""The features and metrics stage: every registered metric of every system, each forward pass once.

One code path for runs (:func:`measure`) and ``trecs-eval metrics`` (:func:`evaluate_set`):

1. :func:`plan_metrics` resolves each configured name in the metric registry
   (:mod:`trecs_eval.metrics.registry`) and checks its parameters, before any work;
2. for each image set (a system's images), each feature space the planned metrics need is
   extracted once (:class:`~trecs_eval.features.registry.FeatureExtractors`; content-addressed
   cache, so a resumed or extended run computes features only for new images); the reference
   set's features (``reference.kind``) and the narratives' CLIP embeddings once per run;
3. each metric's ``compute`` gets those features (:class:`~trecs_eval.metrics.types.MetricInputs`).

Per-item arrays go to ``RUN/features/{system}.npz`` and ``RUN/features/reference.npz``; each
metric's declaration (:class:`~trecs_eval.metrics.types.MetricInfo`) goes to results.json, where
the reports read display names, directions and feature keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from trecs_eval.config import MetricSpec, RunConfig
from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.narratives import Narrative
from trecs_eval.device import resolve_device
from trecs_eval.errors import ConfigError, InputError, UnknownNameError, suggest
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.identity import library_versions
from trecs_eval.features.images import list_images
from trecs_eval.features.registry import EXTRACTORS, ExtractorSettings, FeatureExtractors
from trecs_eval.generation.protocol import Generator
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.metrics.intervals import ImageClusters
from trecs_eval.metrics.registry import checked_params, metric, parse_metric_names
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricOutput, MetricResult
from trecs_eval.rundir import FEATURES_DIR, write_features_npz

log = logging.getLogger(__name__)

# Random weights for --uncalibrated-weights use one fixed seed, whatever the run seed, so that all
# uncalibrated runs share one extractor identity (comparable, and cached once).
UNCALIBRATED_WEIGHTS_SEED = 0
REFERENCE = "reference"


@dataclass(frozen=True)
class PlannedMetric:
    """A registered metric with its checked parameters (defaults filled in)."""

    metric: Metric
    params: dict[str, Any]

    @property
    def spaces(self) -> tuple[str, ...]:
        return self.metric.spaces(self.params)

    @property
    def info(self) -> MetricInfo:
        """The declaration as this run uses it (the feature space a parameter picked)."""
        return replace(self.metric.info, features=self.spaces)


@dataclass(frozen=True)
class Measurements:
    """Every metric result of the run plus what produced them."""

    metrics: list[MetricResult]
    extractors: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    uncalibrated: bool = False
    extra_columns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    infos: dict[str, MetricInfo] = field(default_factory=dict)


def plan_metrics(specs: Sequence[MetricSpec]) -> list[PlannedMetric]:
    """Names, parameters and feature spaces of ``specs``, checked before any work."""
    if specs:  # a run may list no metric (images only); an empty --metrics is the CLI's error
        parse_metric_names([s.name for s in specs])
    plan = [PlannedMetric(metric(s.name), checked_params(s.name, s.params)) for s in specs]
    for planned in plan:
        for space in planned.spaces:
            if space not in EXTRACTORS:
                raise UnknownNameError(f"metric {planned.metric.name}: unknown feature space {space!r}"
                                       f"{suggest(space, EXTRACTORS.names())}")
    return plan


def check_metric_names(config: RunConfig) -> None:
    """Unknown metric names fail before any work, with a suggestion (parameters and feature spaces:
    :func:`trecs_eval.preflight.check_metric_params`, which names the config file and key)."""
    if config.metrics:
        parse_metric_names([m.name for m in config.metrics])


@dataclass
class ReferenceFeatures:
    """The reference set's features per space, extracted on first use (saved statistics serve
    the ``inception`` space of FID only). Each image is one row (``image_ids``, the intervals'
    reference clusters); ``items_per_image``: evaluation narratives per reference image."""

    extractors: FeatureExtractors
    paths: list[Path] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    statistics: Any = None
    source: str = "reference"
    features: dict[str, Any] = field(default_factory=dict)
    image_ids: list[str] = field(default_factory=list)
    items_per_image: float | None = None

    def record(self) -> dict[str, Any]:
        """What a set metric's result records about its reference set."""
        if self.statistics is not None:
            return {}
        out: dict[str, Any] = {"reference_images": len(self.paths)}
        if self.items_per_image is not None:
            out["reference_narratives_per_image"] = self.items_per_image
        return out

    def get(self, space: str) -> Any:
        if space in self.features:
            return self.features[space]
        if self.statistics is not None:
            if space != "inception":
                raise ConfigError(f"saved reference statistics hold Inception features only; the {space!r} "
                                  "space needs reference images", hint="set reference.kind to eval or images")
            return self.statistics
        if len(self.paths) < 2:
            raise InputError(f"the reference set has {len(self.paths)} images; set metrics need more",
                             path=self.source, field="reference")
        log.info("%s: %d reference images", space, len(self.paths))
        self.features[space] = self.extractors.extract(space, self.paths)
        return self.features[space]

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for space, feats in self.features.items():
            out.update(self.extractors.get(space).arrays(feats))
        return out


@dataclass(frozen=True)
class ImageSet:
    """One set of images to score: a system's images in item order, and what they show."""

    system: str
    item_ids: tuple[str, ...]
    paths: tuple[Path, ...]
    narratives: tuple[Narrative, ...] = ()
    items: tuple[EvalItem, ...] = ()
    canvases: Mapping[str, Path] | None = None


@dataclass
class SetEvaluation:
    """What :func:`evaluate_set` found for one image set."""

    results: list[MetricResult] = field(default_factory=list)
    columns: dict[str, dict[str, float]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class TextEmbeddings:
    """The narratives' CLIP embeddings, computed on first use and shared by every system."""

    def __init__(self, extractors: FeatureExtractors, narratives: Sequence[Narrative]) -> None:
        self.extractors, self.narratives, self._value = extractors, list(narratives), None

    def get(self) -> Any:
        if self._value is None:
            if not self.narratives:
                raise ConfigError("a text metric needs the narratives of the images",
                                  hint="trecs-eval metrics: pass --narratives FILE.jsonl")
            log.info("CLIP: embedding %d narratives", len(self.narratives))
            self._value = self.extractors.clip_texts(self.narratives)
        return self._value


def evaluate_set(plan: Sequence[PlannedMetric], extractors: FeatureExtractors, images: ImageSet,
                 reference: ReferenceFeatures, texts: TextEmbeddings, seed: int) -> SetEvaluation:
    """Every planned metric of one image set; each feature space is extracted once."""
    found = SetEvaluation()
    applicable = [p for p in plan if "canvas" not in p.metric.needs or images.canvases is not None]
    spaces = list(dict.fromkeys(s for p in applicable for s in p.spaces))
    features: dict[str, Any] = {}
    for space in spaces:
        log.info("%s: images of %s", space, images.system)
        features[space] = extractors.extract(space, images.paths)
        found.arrays.update(extractors.get(space).arrays(features[space]))
    identities = {space: extractors.get(space).identity.to_dict() for space in spaces}
    for planned in applicable:
        needs = planned.metric.needs
        inputs = MetricInputs(
            system=images.system, item_ids=images.item_ids, paths=images.paths, seed=seed,
            features={s: features[s] for s in planned.spaces}, identities=identities,
            reference={s: reference.get(s) for s in planned.spaces} if "reference" in needs else {},
            texts=texts.get() if "text" in needs else None, narratives=images.narratives,
            canvases=images.canvases, items=images.items,
            reference_images=tuple(reference.image_ids) if "reference" in needs else ())
        output = planned.metric.compute(inputs, dict(planned.params))
        if isinstance(output, MetricResult):
            output = MetricOutput(output)
        result = replace(output.result, system=images.system)
        if "reference" in needs:  # a set metric: record its sampling units on both sides
            result = replace(result, params={**result.params, **ImageClusters.of_inputs(inputs).params(
                len(images.item_ids)), **reference.record()})
        found.results.append(result)
        for column, values in output.columns.items():
            found.columns[column] = dict(values)
        found.arrays.update(output.arrays)
    return found


def measure(config: RunConfig, run_dir: Path, items: Sequence[EvalItem], outputs: Sequence[SystemOutput],
            generators: Sequence[Generator], progress: bool = True, engine: Any = None) -> Measurements:
    """Extract features (forward passes on ``engine``, a :class:`trecs_eval.execution.Engine`; default
    this process), write ``features/*.npz`` and compute every configured metric."""
    plan = plan_metrics(config.metrics)
    extractors = feature_extractors(config, progress, toyworld_roots(config, items))
    if engine is not None:
        extractors = engine.bind_extractors(extractors)
    reference = run_reference(config, items, extractors)
    texts = TextEmbeddings(extractors, [it.narrative for it in items])
    ids = tuple(it.item_id for it in items)
    results: list[MetricResult] = []
    extra: dict[str, dict[str, dict[str, float]]] = {}
    for out, generator in zip(outputs, generators, strict=True):
        canvases = ({i: out.canvases[i] for i in ids} if generator.capabilities.returns_canvas else None)
        images = ImageSet(out.system, ids, tuple(out.images[i] for i in ids),
                          tuple(it.narrative for it in items), tuple(items), canvases)
        found = evaluate_set(plan, extractors, images, reference, texts, config.seed)
        results += found.results
        for column, values in found.columns.items():
            extra.setdefault(column, {})[out.system] = values
        if found.arrays:
            write_features_npz(run_dir / FEATURES_DIR / f"{out.system}.npz", list(ids), found.arrays)
    if reference.features:
        write_features_npz(run_dir / FEATURES_DIR / f"{REFERENCE}.npz", reference.item_ids,
                           reference.arrays())
    identities = extractors.identities()
    uncalibrated = any(e.get("uncalibrated") for e in identities.values())
    infos = {p.metric.name: p.info for p in plan}
    return Measurements(results, identities, library_versions(), [], uncalibrated, extra, infos)


def feature_extractors(config: RunConfig, progress: bool = True, toyworld_roots: Sequence[Path] = ()
                       ) -> FeatureExtractors:
    """The run's extractors for its ``[extractors]`` settings (one cache); ``toyworld_roots``
    are the toyworld folders whose images the ``toyworld_oracle`` segmenter knows."""
    ex = config.extractors

    def text(path: Path | None) -> str | None:
        return str(path) if path is not None else None

    settings = ExtractorSettings(
        device=resolve_device(config.device), batch_size=ex.batch_size,
        inception_weights=text(ex.inception_weights), preprocessing=ex.preprocessing,
        inception_layout=ex.inception_layout, clip_model=ex.clip_model,
        clip_pretrained=ex.clip_pretrained, text_policy=ex.text_policy,
        uncalibrated=ex.uncalibrated, seed=UNCALIBRATED_WEIGHTS_SEED, progress=progress,
        dinov2_arch=ex.dinov2_arch, dinov2_weights=text(ex.dinov2_weights),
        cmmd_clip_model=ex.cmmd_clip_model, cmmd_clip_pretrained=ex.cmmd_clip_pretrained,
        segmenter_model=text(ex.segmenter_model), toyworld_roots=tuple(str(r) for r in toyworld_roots))
    return FeatureExtractors(settings, FeatureCache())


def toyworld_roots(config: RunConfig, items: Sequence[EvalItem]) -> list[Path]:
    """The toyworld folders of a run (evaluation split, ``train_dir``, a reference split): every
    image a toyworld system can return (real, retrieval) is in one of them."""
    if config.dataset.kind != "toyworld":
        return []
    roots = {Path(it.reference_image).parent.parent for it in items if it.reference_image is not None}
    if config.dataset.train_dir is not None:
        roots.add(Path(config.dataset.train_dir))
    if config.reference.kind == "images" and config.reference.images is not None:
        roots.add(Path(config.reference.images).parent)
    return sorted(roots)


def run_reference(config: RunConfig, items: Sequence[EvalItem], extractors: FeatureExtractors
                  ) -> ReferenceFeatures:
    """The run's reference set (``[reference] kind``): the evaluation items' own reference images
    (``eval``), a folder (``images``, e.g. a disjoint real split) or saved statistics (``stats``,
    FID only; its extractor identity must equal this run's)."""
    spec = config.reference
    if spec.kind == "stats":
        from trecs_eval.metrics.engine import ReferenceStatistics

        assert spec.stats is not None
        return ReferenceFeatures(extractors, statistics=ReferenceStatistics.load(str(spec.stats)),
                                 source=str(spec.stats))
    if spec.kind == "images":
        assert spec.images is not None
        paths = list_images(spec.images)
        return ReferenceFeatures(extractors, paths, [p.stem for p in paths], source=str(spec.images),
                                 image_ids=[str(p) for p in paths])
    return eval_reference(items, extractors)


def eval_reference(items: Sequence[EvalItem], extractors: FeatureExtractors) -> ReferenceFeatures:
    """The evaluation items' own images, each image ONCE (an image with several narratives would
    otherwise weigh several times in the reference statistics and, as exact copies at distance 0,
    shrink PRDC's k-NN radii). A row keeps the item id of the image's first narrative."""
    first: dict[str, EvalItem] = {}
    for it in items:
        if it.reference_image is not None:
            first.setdefault(str(Path(it.reference_image).resolve()), it)
    kept = list(first.values())
    n_items = sum(1 for it in items if it.reference_image is not None)
    return ReferenceFeatures(extractors, [Path(it.reference_image) for it in kept],  # type: ignore[arg-type]
                             [it.item_id for it in kept], source="evaluation items' reference images",
                             image_ids=[it.narrative.image_id for it in kept],
                             items_per_image=n_items / len(kept) if kept else None)


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

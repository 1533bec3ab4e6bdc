"""Typed, frozen metric records: what a metric is (:class:`MetricInfo`), how it plugs in
(:class:`Metric`), what it is given (:class:`MetricInputs`) and what it returns (:class:`MetricResult`).

A leaf module: it imports nothing from the package at run time, so every stage, the registry,
the harness and the reports can import it without import cycles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trecs_eval.data.evalset import EvalItem
    from trecs_eval.data.narratives import Narrative

SCOPES = ("set", "item")
"""``set``: one number from the whole set (FID); ``item``: the mean of per-item values (CLIPScore)."""
NEEDS = ("reference", "text", "canvas", "items")
"""Inputs beyond the system's images a metric may declare: ``reference`` (the reference set's
features in the metric's feature spaces), ``text`` (CLIP embeddings of the narratives),
``canvas`` (the system's label canvases: systems without them are not scored, which is not a
failure), ``items`` (the evaluation items: gold tags, gold maps, traces)."""

# every MetricResult.status (see its docstring); reports refuse any other value in results.json
METRIC_STATUSES = ("ok", "uncalibrated", "failed", "unavailable")
ESTIMATORS = ("per_item_mean", "pooled_ratio", "set_statistic")
"""What a metric's one number is: ``per_item_mean`` (the mean of the per-item values in
``samples.parquet``), ``pooled_ratio`` (a ratio of per-item counts summed over the set, e.g.
pixel accuracy = sum TP / sum G; the counts are the ``feature_key`` array), ``set_statistic`` (a
function of the whole set, e.g. FID). Run tables, ``compare``, history and the HTML read it."""
MISSING_RULES = ("exclude", "unavailable")
"""How an item without a value is treated: ``exclude`` (left out of the statistic and counted:
``n`` is the number of items with a value), ``unavailable`` (the metric is ``unavailable`` for
that system, with the count in its warnings: never a number over part of the set)."""

@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: its name, direction and unit, and how a report shows it.

    Reports read every field from here (written into ``results.json``), never from a list of
    their own: ``display_name`` heads the column, ``higher_is_better`` gives ↑/↓ and the bold
    best, ``column_order`` places the column (paper order first), ``features`` names the feature
    spaces (extractors) it is computed in, ``feature_key`` the ``features/{system}.npz`` array a
    set metric is recomputed from by ``compare``, ``scope`` whether it is a per-item mean, and
    ``interval`` how its 95 % interval is computed; ``statistic`` the set statistic ``compare``
    recomputes from ``feature_key`` for a paired test (``frechet``, ``kid``, ``inception_score``;
    empty: per-item metrics are compared through ``samples.parquet``; ``pixel_accuracy``, ``miou``
    for pooled ratios of class counts); ``family`` the group a report shows it in (``image quality``,
    ``text alignment``, ``trace adherence``, ...; empty: other). ``estimator`` (:data:`ESTIMATORS`;
    empty: ``per_item_mean`` for scope ``item``, else ``set_statistic``) and ``missing``
    (:data:`MISSING_RULES`) say what the number is and how an item without a value is treated:
    every consumer reads them.
    """

    name: str
    higher_is_better: bool
    unit: str = ""
    description: str = ""
    display_name: str = ""
    scope: str = "set"
    features: tuple[str, ...] = ()
    feature_key: str = ""
    interval: str = ""
    column_order: int = 1000
    statistic: str = ""
    family: str = ""
    estimator: str = ""
    missing: str = "exclude"

    @property
    def resolved_estimator(self) -> str:
        """The declared estimator, or the one ``scope`` implies for declarations that name none."""
        return self.estimator or ("per_item_mean" if self.scope == "item" else "set_statistic")

    @property
    def label(self) -> str:
        """The column header: ``display_name``, else the name with spaces."""
        return self.display_name or self.name.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricInfo:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["features"] = tuple(known.get("features", ()))
        return cls(**known)


@dataclass(frozen=True)
class MetricResult:
    """One metric value for one system, with its uncertainty and provenance.

    ``ci_low``/``ci_high`` bound a 95 % interval (NaN when the metric has none); ``std`` is the
    spread a metric reports by convention (KID over subsets, IS over splits). ``per_sample``
    maps item ids to per-item values where the metric has them. ``status`` is ``"ok"`` or
    ``"uncalibrated"`` (random weights: never a real number) or ``"failed"`` (value NaN and the
    reason in ``warnings``): a failure is never turned into a number; ``"unavailable"`` (value
    NaN, the reason in ``warnings``): the extractor cannot give this metric, e.g. IS with
    Inception weights that lack the classifier.
    """

    name: str
    value: float
    higher_is_better: bool
    n: int
    ci_low: float = math.nan
    ci_high: float = math.nan
    std: float = math.nan
    system: str = ""
    extractor: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    status: str = "ok"
    warnings: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    per_sample: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self, include_per_sample: bool = False) -> dict[str, Any]:
        """JSON-ready dict; NaN becomes None (JSON has no NaN), per-sample values on request."""
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        if not include_per_sample:
            data.pop("per_sample")
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricResult:
        """Inverse of :meth:`to_dict` (None -> NaN for the float fields)."""
        data = dict(data)
        for key in ("value", "ci_low", "ci_high", "std"):
            if data.get(key) is None:
                data[key] = math.nan
        data["warnings"] = tuple(data.get("warnings", ()))
        data.setdefault("per_sample", {})
        return cls(**data)


@dataclass(frozen=True)
class MetricInputs:
    """What a metric's ``compute`` gets for one system (rows of every array in ``item_ids`` order).

    ``features[space]`` is what the extractor registered as ``space`` returns for the system's
    images (e.g. ``InceptionFeatures``, an (n, d) CLIP array, label maps) and ``identities[space]``
    its extractor identity (``ExtractorIdentity.to_dict()``); ``reference[space]``
    the same for the reference set (or saved statistics), present when the metric needs
    ``reference``; ``texts`` the CLIP narrative embeddings (``text``); ``canvases`` item id ->
    canvas PNG (``canvas``); ``items`` the evaluation items (``items``; gold tags and maps);
    ``reference_images`` the image of each reference row (each image appears once).
    """

    system: str
    item_ids: tuple[str, ...]
    paths: tuple[Path, ...]
    seed: int
    features: Mapping[str, Any] = field(default_factory=dict)
    identities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    reference: Mapping[str, Any] = field(default_factory=dict)
    texts: Any = None
    narratives: tuple[Narrative, ...] = ()
    canvases: Mapping[str, Path] | None = None
    items: Sequence[EvalItem] = ()
    reference_images: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricOutput:
    """A result plus extra per-item columns for ``samples.parquet`` (column -> item id -> value)
    and per-item arrays for ``features/{system}.npz`` (key -> array, one row per item id in
    ``MetricInputs.item_ids`` order: e.g. a pooled ratio's class counts, which ``compare`` reads)."""

    result: MetricResult
    columns: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    arrays: Mapping[str, Any] = field(default_factory=dict)


Compute = Callable[[MetricInputs, Mapping[str, Any]], "MetricResult | MetricOutput"]


@dataclass(frozen=True)
class Metric:
    """A metric plug-in: its declaration and how to compute it.

    ``params`` maps every accepted parameter to its default (a config or CLI parameter not in
    it is refused, with a suggestion, before any work). ``features`` are the feature spaces
    (registered extractor names) of the system's images it needs; ``space_param``, when set,
    names the parameter that picks the space instead (PRDC's ``features = "dinov2"``, the
    segmenter metrics' ``segmenter``). ``needs`` lists further inputs (:data:`NEEDS`).
    ``compute(inputs, params)`` gets the params with defaults filled in and returns one
    :class:`MetricResult` (or a :class:`MetricOutput`) for ``inputs.system``.

    Register it under ``info.name`` in :data:`trecs_eval.metrics.registry.METRICS`, or from
    another package through the ``trecs_eval.metrics`` entry-point group
    (``my_metric = "my_package.module:METRIC"``).
    """

    info: MetricInfo
    compute: Compute
    params: Mapping[str, Any] = field(default_factory=dict)
    needs: frozenset[str] = frozenset()
    space_param: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"metric {self.info.name}: unknown needs {sorted(unknown)}; allowed: {NEEDS}")
        if self.info.scope not in SCOPES:
            raise ValueError(f"metric {self.info.name}: scope {self.info.scope!r} not in {SCOPES}")
        if self.info.resolved_estimator not in ESTIMATORS:
            raise ValueError(f"metric {self.info.name}: estimator {self.info.estimator!r} "
                             f"not in {ESTIMATORS}")
        if self.info.missing not in MISSING_RULES:
            raise ValueError(f"metric {self.info.name}: missing {self.info.missing!r} not in {MISSING_RULES}")
        if self.space_param is not None and self.space_param not in self.params:
            raise ValueError(f"metric {self.info.name}: space_param {self.space_param!r} is not a param")

    @property
    def name(self) -> str:
        return self.info.name

    def spaces(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The feature spaces this metric needs with ``params`` (defaults filled in)."""
        if self.space_param is not None:
            return (str(params[self.space_param]),)
        return self.info.features

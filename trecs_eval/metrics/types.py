"""Typed, frozen metric results: everything a report needs, nothing it has to guess."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: its name, direction and unit. Reports read the direction from here."""

    name: str
    higher_is_better: bool
    unit: str = ""
    description: str = ""


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

"""The run directory's results: a versioned, NaN-safe JSON schema shared by the harness and reports.

Run directory layout (written by ``trecs-eval run``; read by ``reports/``)::

    RUN/config.toml            the resolved run config;  RUN/config.hash  its sha256
    RUN/results.json           RunResults (this module)
    RUN/samples.parquet        one row per (system, item_id): per-sample scores + metadata
    RUN/images/{system}/{item_id}.png
    RUN/canvases/{system}/{item_id}.png        (systems that return a canvas; uint8 label ids)
    RUN/features/{system}.npz  item_ids + per-item features (inception_pool, inception_logits,
                               clip_image; canvas_counts / seg_counts: the pooled ratios' per-item
                               class counts), and RUN/features/reference.npz, for the gate's paired tests
    RUN/report/                report files
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trecs_eval.atomic import atomic_write
from trecs_eval.errors import InputError
from trecs_eval.metrics.types import MetricInfo, MetricResult

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.parquet"


@dataclass(frozen=True)
class SystemInfo:
    """One evaluated system: registry name, display name, parameters and what happened to its items."""

    name: str
    generator: str
    version: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)
    n_items: int = 0
    missing_items: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    generation: dict[str, Any] = field(default_factory=dict)
    """What made the images: the generator's optional ``describe(items)`` (model hash, scheduler,
    steps, dtype, seed and prompt policy, ...) plus ``images_per_s`` from the provenance."""


@dataclass(frozen=True)
class RunResults:
    """Everything ``results.json`` holds. ``metrics`` carries one MetricResult per (system, metric);
    ``metric_info`` each metric's declaration (display name, direction, feature space, interval),
    so reports show any metric, a plug-in's included, without a list of their own."""

    run_id: str
    created: str
    config_hash: str
    config: dict[str, Any]
    dataset: dict[str, Any]
    systems: tuple[SystemInfo, ...]
    metrics: tuple[MetricResult, ...]
    extractors: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    uncalibrated: bool = False
    metric_info: dict[str, MetricInfo] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)  # engine, cluster size, workers, start-up s
    schema_version: int = SCHEMA_VERSION

    def metric(self, system: str, name: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.system == system and m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["systems"] = [asdict(s) for s in self.systems]
        data["metrics"] = [m.to_dict() for m in self.metrics]
        data["metric_info"] = {name: info.to_dict() for name, info in self.metric_info.items()}
        data["warnings"] = list(self.warnings)
        return _nan_to_none(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResults:
        data = dict(data)
        data["systems"] = tuple(
            SystemInfo(**{**s, "missing_items": tuple(s.get("missing_items", ())),
                          "notes": tuple(s.get("notes", ()))})
            for s in data["systems"]
        )
        data["metrics"] = tuple(MetricResult.from_dict(m) for m in data["metrics"])
        data["metric_info"] = {name: MetricInfo.from_dict(info)
                               for name, info in data.get("metric_info", {}).items()}
        data["warnings"] = tuple(data.get("warnings", ()))
        return cls(**data)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value


def write_results(run_dir: Path, results: RunResults) -> Path:
    """Write ``results.json`` atomically (temp file + rename): a crash never leaves half a file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RESULTS_FILE
    with atomic_write(path, "w", encoding="utf-8") as fh:  # a failed dump leaves no temp file behind
        json.dump(results.to_dict(), fh, indent=2, sort_keys=False, allow_nan=False)
    return path


def read_results(run_dir: Path) -> RunResults:
    """Read a run directory's ``results.json``; a missing file or another schema version is an InputError."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise InputError("no results.json here: is this a run directory?", path=str(path),
                         hint="pass the folder that `trecs-eval run` wrote")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg})", path=str(path), line=err.lineno) from None
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(f"results schema version {version!r}, this trecs-eval reads {SCHEMA_VERSION}",
                         path=str(path), field="schema_version")
    try:
        return RunResults.from_dict(data)
    except (TypeError, KeyError) as err:
        raise InputError(f"malformed results ({err})", path=str(path)) from None

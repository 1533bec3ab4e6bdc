"""Load a run directory (and only a run directory) into one typed object for reports.

A report reads ``results.json`` (metric values, provenance), ``samples.parquet`` (per-sample
scores and file paths), ``narratives.jsonl`` (captions and traces for the gallery) and, for
the regression gate, ``features/{system}.npz``. Nothing here imports metric internals.
Malformed files raise :class:`InputError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from trecs_eval.data.localized_narratives import read_narratives
from trecs_eval.data.narratives import Narrative
from trecs_eval.errors import InputError
from trecs_eval.metrics.types import METRIC_STATUSES, MetricInfo, MetricResult
from trecs_eval.results import RESULTS_FILE, SAMPLES_FILE, RunResults, read_results
from trecs_eval.rundir import FEATURES_DIR, NARRATIVES_FILE

REQUIRED_SAMPLE_COLUMNS = ("item_id", "system")
# Columns of samples.parquet that describe an item rather than score it.
METADATA_COLUMNS = frozenset({
    "item_id", "system", "image_path", "canvas_path", "reference_path", "narrative",
    "n_words", "n_trace_points", "seed", "status", "error",
})


@dataclass(frozen=True)
class LoadedRun:
    """A run directory read into memory: results, per-sample table and narratives by item id."""

    run_dir: Path
    results: RunResults
    samples: pd.DataFrame | None
    narratives: dict[str, Narrative] = field(default_factory=dict, repr=False)
    _features: dict[str, dict[str, np.ndarray] | None] = field(
        default_factory=dict, repr=False, compare=False)

    @property
    def systems(self) -> list[str]:
        """System names in the order results.json lists them."""
        return [s.name for s in self.results.systems]

    @property
    def metric_names(self) -> list[str]:
        """Metric names in order of first appearance in results.json."""
        return list(dict.fromkeys(m.name for m in self.results.metrics))

    @property
    def uncalibrated(self) -> bool:
        """True when any number of this run came from random (uncalibrated) weights."""
        return self.results.uncalibrated or any(m.status == "uncalibrated" for m in self.results.metrics)

    def metric(self, system: str, name: str) -> MetricResult | None:
        return self.results.metric(system, name)

    def metric_info(self, name: str) -> MetricResult:
        """Any one result of metric ``name`` (for its direction); KeyError when the run has none."""
        found = next((m for m in self.results.metrics if m.name == name), None)
        if found is None:
            raise KeyError(name)
        return found

    def info(self, name: str) -> MetricInfo:
        """Metric ``name``'s declaration: display name, direction, feature key, column order.

        From ``results.json`` (every run since the metric registry); for older runs from the
        installed metric registry; else a generic one (the name, the results' direction)."""
        found = self.results.metric_info.get(name)
        if found is not None and not found.estimator and name in _registered():
            return declared_info(name, found.higher_is_better)  # a run from before declared estimators
        if found is not None:
            return found
        result = next((m for m in self.results.metrics if m.name == name), None)
        return declared_info(name, result.higher_is_better if result is not None else True)

    @cached_property
    def per_sample_columns(self) -> list[str]:
        """Numeric columns of samples.parquet that hold per-sample scores (metadata excluded)."""
        if self.samples is None:
            return []
        return [c for c in self.samples.columns
                if c not in METADATA_COLUMNS and pd.api.types.is_numeric_dtype(self.samples[c])
                and not pd.api.types.is_bool_dtype(self.samples[c])]

    def resolve(self, path: object) -> Path | None:
        """A path from samples.parquet: relative ones are relative to the run directory."""
        if path is None or (isinstance(path, float) and np.isnan(path)) or str(path) == "":
            return None
        candidate = Path(str(path))
        return candidate if candidate.is_absolute() else self.run_dir / candidate

    def features_path(self, name: str) -> Path:
        return self.run_dir / FEATURES_DIR / f"{name}.npz"

    def features(self, name: str) -> dict[str, np.ndarray] | None:
        """``features/{name}.npz`` as a dict of arrays, or None when the file does not exist."""
        if name not in self._features:  # read each file once per loaded run
            path = self.features_path(name)
            self._features[name] = load_features(path) if path.is_file() else None
        return self._features[name]


def _registered() -> list[str]:
    from trecs_eval.metrics.registry import METRICS

    return METRICS.names()


def declared_info(name: str, higher_is_better: bool = True) -> MetricInfo:
    """The installed metric registry's declaration of ``name``, or a generic one (no suggestion:
    a report shows whatever a run holds, plug-ins that are no longer installed included)."""
    from trecs_eval.metrics.registry import METRICS, metric

    if name in METRICS:
        return metric(name).info
    return MetricInfo(name, higher_is_better)


def load_features(path: Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` of per-item features; every array must have one row per item id."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # corrupt, truncated, pickled
        raise InputError(f"cannot read features ({err}); re-run the run that wrote it",
                         path=str(path)) from None
    if "item_ids" in arrays:
        arrays["item_ids"] = arrays["item_ids"].astype(str)
        n = len(arrays["item_ids"])
        for key, value in arrays.items():
            if value.ndim == 0 or value.shape[0] != n:
                raise InputError(f"{value.shape[0] if value.ndim else 0} rows for {n} item_ids",
                                 path=str(path), field=key)
    return arrays


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, shapes, dtypes and bytes: equal digests mean equal content."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{value.shape}:{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _read_samples(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        return None
    try:
        samples = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
        raise InputError(f"cannot read parquet ({err})", path=str(path)) from None
    for column in REQUIRED_SAMPLE_COLUMNS:
        if column not in samples.columns:
            raise InputError("missing column", path=str(path), field=column)
    samples = samples.astype({"item_id": str, "system": str})
    duplicated = samples.duplicated(["system", "item_id"])
    if duplicated.any():
        row = samples[duplicated].iloc[0]
        raise InputError(f"duplicate row for system {row['system']!r}, item {row['item_id']!r}",
                         path=str(path), line=int(np.flatnonzero(duplicated.to_numpy())[0]) + 1,
                         field="item_id")
    return samples


# field -> what it must hold; a tampered or hand-edited results.json is refused, naming the field
_NUMBER, _TEXT, _FLAG = (int, float), (str,), (bool,)
_METRIC_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {  # field -> (types, None allowed)
    "name": (_TEXT, False), "system": (_TEXT, False), "value": (_NUMBER, False), "ci_low": (_NUMBER, False),
    "ci_high": (_NUMBER, False), "std": (_NUMBER, False), "n": ((int,), False),
    "higher_is_better": (_FLAG, False), "status": (_TEXT, False), "seed": ((int,), True),
}
_RUN_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "run_id": (_TEXT, False), "created": (_TEXT, False), "git_commit": (_TEXT, True),
    "uncalibrated": (_FLAG, False),
}
_INFO_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {  # metric declarations the reports read
    "display_name": (_TEXT, False), "higher_is_better": (_FLAG, False), "column_order": ((int,), False),
    "scope": (_TEXT, False), "feature_key": (_TEXT, False), "statistic": (_TEXT, False),
    "family": (_TEXT, False), "estimator": (_TEXT, False), "missing": (_TEXT, False),
}


def _check_field(value: object, kinds: tuple[type, ...], optional: bool, path: Path, field: str) -> None:
    if value is None and optional:
        return
    wrong_bool = isinstance(value, bool) and bool not in kinds  # True is an int to Python, not to us
    if wrong_bool or not isinstance(value, kinds):
        expected = "a number" if kinds == _NUMBER else " or ".join(k.__name__ for k in kinds)
        raise InputError(f"{value!r} where {expected} belongs", path=str(path), field=field)


def _check_unicode(value: object, path: Path, field: str) -> None:
    """JSON's ``\\ud800`` escapes give lone surrogates, which no output file or terminal can encode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("text holds a lone surrogate (a \\ud800-\\udfff escape): not valid Unicode",
                             path=str(path), field=field or None) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, path, field)
            _check_unicode(item, path, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_unicode(item, path, f"{field}[{i}]")


def check_results(results: RunResults, path: Path) -> RunResults:
    """Every field a report reads has the type the schema says, and all text is valid Unicode
    (InputError naming the field)."""
    _check_unicode(results.to_dict(), path, "")
    for key, (kinds, optional) in _RUN_FIELDS.items():
        _check_field(getattr(results, key), kinds, optional, path, key)
    for i, system in enumerate(results.systems):
        _check_field(system.name, _TEXT, False, path, f"systems[{i}].name")
    for i, metric in enumerate(results.metrics):
        for key, (kinds, optional) in _METRIC_FIELDS.items():
            _check_field(getattr(metric, key), kinds, optional, path, f"metrics[{i}].{key}")
        if metric.status not in METRIC_STATUSES:
            raise InputError(f"status {metric.status!r} is not one of {', '.join(METRIC_STATUSES)}",
                             path=str(path), field=f"metrics[{i}].status")
    for name, info in results.metric_info.items():
        for key, (kinds, optional) in _INFO_FIELDS.items():
            _check_field(getattr(info, key), kinds, optional, path, f"metric_info.{name}.{key}")
    return results


def load_run(run_dir: Path | str) -> LoadedRun:
    """Read a run directory; samples and narratives are optional, results.json is not."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("not a directory", path=str(run_dir), hint="pass a run directory")
    results = check_results(read_results(run_dir), run_dir / RESULTS_FILE)
    narratives: dict[str, Narrative] = {}
    if (run_dir / NARRATIVES_FILE).is_file():
        narratives = {n.item_id: n for n in read_narratives(run_dir / NARRATIVES_FILE).narratives}
    return LoadedRun(run_dir=run_dir, results=results, samples=_read_samples(run_dir), narratives=narratives)


def as_run(run: LoadedRun | Path | str) -> LoadedRun:
    """Accept either a loaded run or a path to one."""
    return run if isinstance(run, LoadedRun) else load_run(run)

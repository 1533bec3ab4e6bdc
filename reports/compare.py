"""The regression gate: compare run B against run A metric by metric, with a paired bootstrap.

For every (system, metric) both runs hold, ``delta = B - A`` over the items both runs share:

* FID, KID, IS: recomputed from ``features/{system}.npz`` (and ``features/reference.npz``)
  with the items resampled jointly in both runs (the same indices for A and B). FID on all
  items equals the run's FID; IS uses the project's ``logits_to_inception_score`` with the
  run's splits and seed (so on all items it is the run's IS); KID is one unbiased MMD^2 over
  all items (the run's KID averages subsets, so its value can differ slightly);
* per-sample metrics (a numeric column of samples.parquet: CLIPScore, R-precision, ...): the
  paired bootstrap of the mean difference.

The CI is the 95 % percentile interval and the p-value the two-sided shift-method p-value of
``trecs_eval.metrics.bootstrap.paired_bootstrap``. A change is *significant* when the CI
excludes 0 and ``p < alpha`` (both: the shift p-value is the more conservative for skewed
statistics such as FID, and a gate should not cry wolf); its direction (better / worse)
comes from the metric's declared ``higher_is_better``. A *regression* is a significant
worsening larger than the metric's threshold (0 unless given); it fails the gate (exit 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reports.load import LoadedRun, array_digest, as_run
from trecs_eval.errors import ConfigError, IdentityMismatchError, InputError, TrecsEvalError, UnknownNameError
from trecs_eval.errors import suggest as did_you_mean
from trecs_eval.metrics.bootstrap import PairedBootstrap, paired_bootstrap, paired_bootstrap_mean_diff
from trecs_eval.metrics.inception_score import DEFAULT_SPLITS, logits_to_inception_score
from trecs_eval.metrics.resample import ReferenceSet, Statistic, fid_statistic, kid_statistic
from trecs_eval.metrics.types import MetricResult
from trecs_eval.rundir import REFERENCE_FEATURES

BETTER, WORSE, NO_CHANGE, NOT_COMPARED = "better", "worse", "no significant change", "not compared"
DEFAULT_N_RESAMPLES = 1000
DEFAULT_ALPHA = 0.05
# Feature-set metrics: which features/*.npz array they need and whether they need the reference set.
FEATURE_METRICS: dict[str, tuple[str, bool]] = {
    "fid": ("inception_pool", True), "kid": ("inception_pool", True),
    "is": ("inception_logits", False), "inception_score": ("inception_logits", False),
}


@dataclass(frozen=True)
class Threshold:
    """How much worse a metric may get before the gate fails: ``magnitude`` in the metric's units.

    ``sign`` is the sign the user wrote (+1, -1) or 0 when unsigned; a written sign must point
    in the metric's worse direction (``fid=+1.0``: FID rising by more than 1 fails).
    """

    metric: str
    magnitude: float
    sign: int = 0


def parse_thresholds(text: str | None) -> dict[str, Threshold]:
    """``"fid=+1.0,clip_score=-0.5"`` -> {name: Threshold}; malformed entries are a ConfigError."""
    out: dict[str, Threshold] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        name, sep, number = entry.partition("=")
        name, number = name.strip(), number.strip()
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value):
            raise ConfigError(f"bad threshold {entry.strip()!r}: expected METRIC=NUMBER, e.g. fid=+1.0")
        sign = 1 if number.startswith("+") else -1 if number.startswith("-") else 0
        out[name] = Threshold(name, abs(value), sign)
    return out


@dataclass(frozen=True)
class MetricComparison:
    """One (system, metric) row of the gate: values on the shared items, delta B-A and its CI."""

    system: str
    metric: str
    higher_is_better: bool
    source: str
    n: int = 0
    value_a: float = math.nan
    value_b: float = math.nan
    delta: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    verdict: str = NOT_COMPARED
    threshold: float = 0.0
    regression: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Comparison:
    """All rows of a gate run and the settings that produced them."""

    run_a: str
    run_b: str
    rows: tuple[MetricComparison, ...]
    n_resamples: int
    seed: int
    alpha: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def regressions(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.regression]

    @property
    def exit_code(self) -> int:
        """1 when any metric regressed beyond its threshold with significance, else 0."""
        return 1 if self.regressions else 0

    def to_dict(self) -> dict[str, object]:
        rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in asdict(r).items()} for r in self.rows]
        return {"run_a": self.run_a, "run_b": self.run_b, "n_resamples": self.n_resamples,
                "seed": self.seed, "alpha": self.alpha, "warnings": list(self.warnings),
                "exit_code": self.exit_code, "rows": rows}


def _verdict(result: PairedBootstrap, higher_is_better: bool, alpha: float) -> str:
    significant = result.p_value < alpha and (result.ci_low > 0.0 or result.ci_high < 0.0)
    if not significant:
        return NO_CHANGE
    return BETTER if (result.difference > 0) == higher_is_better else WORSE


def _check_identities(a: LoadedRun, b: LoadedRun, allow: bool, warnings: list[str]) -> None:
    for name in sorted(set(a.results.extractors) | set(b.results.extractors)):
        ida, idb = a.results.extractors.get(name), b.results.extractors.get(name)
        if ida == idb:
            continue
        keys = sorted(k for k in set(ida or {}) | set(idb or {}) if (ida or {}).get(k) != (idb or {}).get(k))
        message = (f"extractor {name!r} differs between the runs (fields: {', '.join(keys) or 'presence'}): "
                   "their numbers are not comparable")
        if not allow:
            raise IdentityMismatchError(message, hint="re-run both with the same extractor, or pass "
                                                      "--allow-mismatch to compare anyway")
        warnings.append(message)


def _item_ids(run: LoadedRun, system: str) -> list[str]:
    """The system's item ids in the run's own order (IS splits depend on the order)."""
    if run.samples is not None:
        return list(run.samples.loc[run.samples["system"] == system, "item_id"])
    features = run.features(system)
    return list(features["item_ids"]) if features and "item_ids" in features else []


def _shared_items(a: LoadedRun, b: LoadedRun, system: str, allow: bool, warnings: list[str]) -> list[str]:
    ordered_a = _item_ids(a, system)
    ids_a, ids_b = set(ordered_a), set(_item_ids(b, system))
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        message = (f"system {system!r}: the runs evaluated different items ({len(only_a)} only in A, e.g. "
                   f"{only_a[:3]}; {len(only_b)} only in B, e.g. {only_b[:3]})")
        if not allow:
            raise InputError(message, path=str(b.run_dir), field="item_id",
                             hint="compare runs over the same evaluation set, or pass --allow-mismatch "
                                  "to compare the shared items only")
        warnings.append(message + f"; comparing the {len(ids_a & ids_b)} shared items")
    return [item for item in ordered_a if item in ids_b]  # run A's order, for both runs


def _aligned(run: LoadedRun, system: str, key: str, items: Sequence[str]) -> np.ndarray | None:
    features = run.features(system)
    if features is None or key not in features or "item_ids" not in features:
        return None
    position = {item: i for i, item in enumerate(features["item_ids"])}
    missing = [item for item in items if item not in position]
    if missing:
        raise InputError(f"no features for {len(missing)} items (e.g. {missing[:3]})",
                         path=str(run.features_path(system)), field="item_ids")
    return features[key][[position[item] for item in items]]


def _is_statistic(logits: np.ndarray, result: MetricResult) -> Statistic:
    """The project's IS of ``logits[idx]`` with the run's splits and seed (on all items: the run's IS)."""
    splits = int(result.params.get("splits", DEFAULT_SPLITS))
    seed = result.seed if result.seed is not None else 0
    return lambda idx: logits_to_inception_score(logits[idx], seed=seed, splits=splits).mean


def _feature_statistics(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                        references: dict[str, ReferenceSet]) -> tuple[Statistic, Statistic] | str:
    """The two resample statistics, or the reason they cannot be built."""
    key, needs_reference = FEATURE_METRICS[metric]
    feats_a, feats_b = _aligned(a, system, key, items), _aligned(b, system, key, items)
    if feats_a is None or feats_b is None:
        return f"features/{system}.npz with {key!r} missing in run {'A' if feats_a is None else 'B'}"
    if not needs_reference:
        result_a, result_b = a.metric(system, metric), b.metric(system, metric)
        assert result_a is not None and result_b is not None
        return _is_statistic(feats_a, result_a), _is_statistic(feats_b, result_b)
    if key not in references:  # one ReferenceSet per array: its factor / kernel terms are computed once
        reference = a.features(REFERENCE_FEATURES)
        if reference is None or key not in reference:
            return f"features/{REFERENCE_FEATURES}.npz with {key!r} missing"
        references[key] = ReferenceSet(reference[key])
    build = fid_statistic if metric == "fid" else kid_statistic
    return build(feats_a, references[key]), build(feats_b, references[key])


def _sample_values(run: LoadedRun, system: str, metric: str, items: Sequence[str]) -> np.ndarray | None:
    if run.samples is None or metric not in run.per_sample_columns:
        return None
    rows = run.samples[run.samples["system"] == system].set_index("item_id")
    return rows.loc[list(items), metric].to_numpy(dtype=np.float64)


def _compare_one(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                 threshold: float, n_resamples: int, seed: int, alpha: float,
                 references: dict[str, ReferenceSet]) -> MetricComparison:
    ra, rb = a.metric(system, metric), b.metric(system, metric)
    assert ra is not None and rb is not None
    row = MetricComparison(system, metric, ra.higher_is_better, "", len(items), threshold=threshold)
    failed = [name for name, r in (("A", ra), ("B", rb)) if r.status == "failed"]
    if failed:
        return _replace(row, reason=f"failed in run {' and '.join(failed)}")
    if len(items) < 2:
        return _replace(row, reason=f"{len(items)} shared items; at least 2 are needed")
    try:
        if metric in FEATURE_METRICS:
            stats = _feature_statistics(a, b, system, metric, items, references)
            if isinstance(stats, str):
                return _replace(row, source="features", reason=stats)
            everything = np.arange(len(items))
            value_a, value_b = stats[0](everything), stats[1](everything)
            result = paired_bootstrap(len(items), stats[1], stats[0], n_resamples, seed, alpha)
            source = "features"
        else:
            va, vb = _sample_values(a, system, metric, items), _sample_values(b, system, metric, items)
            if va is None or vb is None:
                return _replace(row, reason="no per-item data: neither a feature metric nor a "
                                            f"samples.parquet column in run {'A' if va is None else 'B'}")
            value_a, value_b = float(np.mean(va)), float(np.mean(vb))
            result = paired_bootstrap_mean_diff(vb, va, n_resamples, seed, alpha)
            source = "samples"
    except TrecsEvalError as err:
        raise TrecsEvalError(f"comparing {system}/{metric}: {err}") from None
    verdict = _verdict(result, ra.higher_is_better, alpha)
    worsening = -result.difference if ra.higher_is_better else result.difference
    return _replace(row, source=source, value_a=value_a, value_b=value_b, delta=result.difference,
                    ci_low=result.ci_low, ci_high=result.ci_high, p_value=result.p_value, verdict=verdict,
                    regression=verdict == WORSE and worsening > threshold)


def _replace(row: MetricComparison, **changes: object) -> MetricComparison:
    return MetricComparison(**{**asdict(row), **changes})


def _threshold_for(metric: str, higher_is_better: bool, thresholds: Mapping[str, Threshold]) -> float:
    given = thresholds.get(metric)
    if given is None:
        return 0.0
    worse_sign = -1 if higher_is_better else 1
    if given.sign not in (0, worse_sign):
        direction = "higher" if higher_is_better else "lower"
        written = f"{metric}={'+' if given.sign > 0 else '-'}{given.magnitude:g}"
        raise ConfigError(f"threshold {written} points the wrong way: {direction} is better for {metric}, "
                          f"so a regression is "
                          f"{'a decrease' if higher_is_better else 'an increase'}; write "
                          f"{metric}={'-' if higher_is_better else '+'}{given.magnitude:g}")
    return given.magnitude


def compare_runs(
    run_a: LoadedRun | Path | str,
    run_b: LoadedRun | Path | str,
    thresholds: Mapping[str, Threshold] | None = None,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    allow_mismatch: bool = False,
    metrics: Sequence[str] | None = None,
    progress: bool = False,
) -> Comparison:
    """Compare B against A (see the module doc); bad input raises a TrecsEvalError (CLI exit 2).

    ``metrics`` restricts the gate to those metric names (default: every metric of either run).
    """
    a, b = as_run(run_a), as_run(run_b)
    thresholds = dict(thresholds or {})
    warnings: list[str] = []
    _check_identities(a, b, allow_mismatch, warnings)
    _check_reference(a, b, allow_mismatch, warnings)
    names = list(dict.fromkeys(a.metric_names + b.metric_names))
    for name in metrics or ():
        if name not in names:
            raise UnknownNameError(f"unknown metric {name!r}{did_you_mean(name, names)}")
    for name in thresholds:
        if name not in names:
            raise UnknownNameError(f"threshold for unknown metric {name!r}{did_you_mean(name, names)}")
    systems = [s for s in a.systems if s in b.systems]
    for system in sorted(set(a.systems) ^ set(b.systems)):
        warnings.append(f"system {system!r} is in only one run; not compared")
    if uncalibrated := [label for label, run in (("A", a), ("B", b)) if run.uncalibrated]:
        warnings.append(f"run {' and '.join(uncalibrated)} is UNCALIBRATED (random weights)")
    rows, references = [], {}
    shared = {system: _shared_items(a, b, system, allow_mismatch, warnings) for system in systems}
    pairs = [(s, m) for s in systems for m in (metrics or names)
             if a.metric(s, m) is not None and b.metric(s, m) is not None]
    for system, metric in tqdm(pairs, desc="paired bootstrap", unit="metric", disable=not progress):
        items = shared[system]
        ra, rb = a.metric(system, metric), b.metric(system, metric)
        assert ra is not None and rb is not None
        if ra.higher_is_better != rb.higher_is_better:
            raise InputError(f"metric {metric!r} declares opposite directions in the two runs",
                             path=str(b.run_dir / "results.json"), field="higher_is_better")
        threshold = _threshold_for(metric, ra.higher_is_better, thresholds)
        rows.append(_compare_one(a, b, system, metric, items, threshold, n_resamples, seed, alpha,
                                 references))
    return Comparison(str(a.run_dir), str(b.run_dir), tuple(rows), n_resamples, seed, alpha, tuple(warnings))


def _check_reference(a: LoadedRun, b: LoadedRun, allow: bool, warnings: list[str]) -> None:
    ref_a, ref_b = a.features(REFERENCE_FEATURES), b.features(REFERENCE_FEATURES)
    if ref_a is None or ref_b is None or array_digest(ref_a) == array_digest(ref_b):
        return
    message = "the runs used different reference features (features/reference.npz differ)"
    if not allow:
        raise IdentityMismatchError(message,
                                    hint="pass --allow-mismatch to compare against run A's reference")
    warnings.append(message + "; using run A's")

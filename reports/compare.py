"""The regression gate: compare run B against run A metric by metric, with paired tests.

For every (system, metric) both runs hold, ``delta = B - A`` over the items both runs share
(item i of A is paired with item i of B), with a two-sided test of ``H0: E delta = 0``:

* FID, KID (and any metric whose declaration names the ``frechet`` or ``kid`` statistic on a
  feature array, e.g. FD-DINOv2): recomputed from ``features/{system}.npz`` and
  ``features/reference.npz``; a paired delta-method z-test
  (:func:`trecs_eval.metrics.intervals.paired_delta_test`): the influence values of B minus
  those of A, summed per cluster (image), plus the reference items' (shared by both runs). No
  resampling: one eigendecomposition per run and system, so LN-COCO-sized gates run in minutes
  (``benchmarks/bench_compare.py``, which also shows the agreement with the paired bootstrap).
  KID is the unbiased MMD² over all pairs, the value the run reports.
* IS: a paired t-test over the per-split differences (both runs split the shared items with the
  same seeded permutation, so split k holds the same items in both; the splits are independent
  when items are; the splits do not follow images, so narratives of one image may share or
  straddle splits: with several narratives per image this test is somewhat liberal).
* per-item metrics (a numeric column of samples.parquet: CLIPScore, R-precision, ...): a paired
  z-test of the mean difference with the cluster-robust (image) variance of the per-item
  differences, the delta method for a mean. Not the paired bootstrap: its p-value cannot go below
  2/(resamples + 1) = 0.002, so after a Holm correction over the ~50 rows of a demo-sized gate a
  per-item metric could never fail it (a 0.84 -> 0.53 trace-canvas drop passed with p_adj 0.10).

**Family-wise error.** One gate tests every metric of every system; ``correction`` (default
``holm``) adjusts the p-values over all compared rows so that the chance of *any* false alarm
when nothing changed is at most ``alpha`` (Holm 1979; ``bonferroni`` is more conservative,
``none`` controls each row alone). A change is *significant* when its adjusted p < alpha; its
direction (better / worse) comes from the metric's declared ``higher_is_better``. A
*regression* is a significant worsening larger than the metric's threshold (0 unless given);
it fails the gate (exit 1). The CI shown is the unadjusted 95 % interval of the delta.
Measured false-alarm rate and power: ``benchmarks/bench_coverage.py`` and the README.
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
from trecs_eval.metrics import intervals
from trecs_eval.metrics.inception_score import DEFAULT_SPLITS, logits_to_inception_score
from trecs_eval.metrics.intervals import (
    DEFAULT_CORRECTION,
    PairedTest,
    adjust_p_values,
    mean_influence,
    paired_delta_test,
)
from trecs_eval.metrics.resample import ReferenceSet
from trecs_eval.metrics.types import MetricResult
from trecs_eval.rundir import REFERENCE_FEATURES

BETTER, WORSE, NO_CHANGE, NOT_COMPARED = "better", "worse", "no significant change", "not compared"
DEFAULT_N_RESAMPLES = 1000
DEFAULT_ALPHA = 0.05
# Set statistics recomputed from features/*.npz (the metric's declared ``MetricInfo.statistic`` on
# its ``feature_key`` array): FID and FD-DINOv2 are both "frechet"; "inception_score" needs no reference.
INFLUENCE = {"frechet": intervals.fid_influence, "kid": intervals.kid_influence}
FEATURE_STATISTICS = (*INFLUENCE, "inception_score")


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
    p_adjusted: float = math.nan
    n_clusters: int = 0
    method: str = ""
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
    correction: str = DEFAULT_CORRECTION

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
                "seed": self.seed, "alpha": self.alpha, "correction": self.correction,
                "warnings": list(self.warnings),
                "exit_code": self.exit_code, "rows": rows}


def _verdict(delta: float, p_adjusted: float, higher_is_better: bool, alpha: float) -> str:
    if not p_adjusted < alpha:
        return NO_CHANGE
    return BETTER if (delta > 0) == higher_is_better else WORSE


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


def _is_splits(logits: np.ndarray, result: MetricResult) -> np.ndarray:
    """Per-split IS of ``logits`` with the run's splits and seed (their mean is the run's IS)."""
    splits = int(result.params.get("splits", DEFAULT_SPLITS))
    seed = result.seed if result.seed is not None else 0
    return logits_to_inception_score(logits, seed=seed, splits=splits).split_scores


def _clusters(run: LoadedRun, items: Sequence[str]) -> list[str]:
    """The image of each item (``narratives.jsonl``); an item without a narrative is its own image."""
    return [run.narratives[i].image_id if i in run.narratives else f"item:{i}" for i in items]


def _feature_test(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                  references: dict[str, ReferenceSet], alpha: float
                  ) -> tuple[float, float, PairedTest] | str:
    """``(value_a, value_b, test)`` of a feature metric, or the reason it cannot be computed."""
    info = a.info(metric)
    key, needs_reference = info.feature_key, info.statistic != "inception_score"
    feats_a, feats_b = _aligned(a, system, key, items), _aligned(b, system, key, items)
    if feats_a is None or feats_b is None:
        return f"features/{system}.npz with {key!r} missing in run {'A' if feats_a is None else 'B'}"
    if not needs_reference:
        result_a, result_b = a.metric(system, metric), b.metric(system, metric)
        assert result_a is not None and result_b is not None
        splits_a, splits_b = _is_splits(feats_a, result_a), _is_splits(feats_b, result_b)
        test = intervals.paired_split_test(splits_a, splits_b, alpha)
        return float(splits_a.mean()), float(splits_b.mean()), test
    if key not in references:  # one ReferenceSet per array: its factor / kernel terms are computed once
        reference = a.features(REFERENCE_FEATURES)
        if reference is None or key not in reference:
            return f"features/{REFERENCE_FEATURES}.npz with {key!r} missing"
        references[key] = ReferenceSet(reference[key])
    influence = INFLUENCE[info.statistic]
    found_a, found_b = influence(feats_a, references[key]), influence(feats_b, references[key])
    test = intervals.paired_delta_test(found_a, found_b, alpha, _clusters(a, items),
                                       reference_clusters=_reference_clusters(a))
    return found_a.value, found_b.value, test


def _reference_clusters(run: LoadedRun) -> list[str] | None:
    """Images of the reference items when they are evaluation items (``reference.kind = eval``):
    one image then appears once per narrative and its copies are one cluster."""
    reference = run.features(REFERENCE_FEATURES)
    if reference is None or "item_ids" not in reference:
        return None
    ids = [str(i) for i in reference["item_ids"]]
    return [run.narratives[i].image_id if i in run.narratives else f"ref:{i}" for i in ids]


def _sample_values(run: LoadedRun, system: str, metric: str, items: Sequence[str]) -> np.ndarray | None:
    if run.samples is None or metric not in run.per_sample_columns:
        return None
    rows = run.samples[run.samples["system"] == system].set_index("item_id")
    return rows.loc[list(items), metric].to_numpy(dtype=np.float64)


def _compare_one(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                 threshold: float, alpha: float, references: dict[str, ReferenceSet]) -> MetricComparison:
    ra, rb = a.metric(system, metric), b.metric(system, metric)
    assert ra is not None and rb is not None
    row = MetricComparison(system, metric, ra.higher_is_better, "", len(items), threshold=threshold)
    failed = [name for name, r in (("A", ra), ("B", rb)) if r.status == "failed"]
    if failed:
        return _replace(row, reason=f"failed in run {' and '.join(failed)}")
    unavailable = [name for name, r in (("A", ra), ("B", rb)) if r.status == "unavailable"]
    if unavailable:  # e.g. IS with Inception weights that have no classifier
        return _replace(row, reason=f"unavailable in run {' and '.join(unavailable)}")
    if len(items) < 2:
        return _replace(row, reason=f"{len(items)} shared items; at least 2 are needed")
    try:
        if a.info(metric).statistic in FEATURE_STATISTICS:
            found = _feature_test(a, b, system, metric, items, references, alpha)
            if isinstance(found, str):
                return _replace(row, source="features", reason=found)
            value_a, value_b, test = found
            source = "features"
        else:
            va, vb = _sample_values(a, system, metric, items), _sample_values(b, system, metric, items)
            if va is None or vb is None:
                return _replace(row, reason="no per-item data: neither a feature metric nor a "
                                            f"samples.parquet column in run {'A' if va is None else 'B'}")
            value_a, value_b = float(np.mean(va)), float(np.mean(vb))
            test = paired_delta_test(mean_influence(va), mean_influence(vb), alpha, _clusters(a, items))
            source = "samples"
    except TrecsEvalError as err:
        raise TrecsEvalError(f"comparing {system!r}/{metric}: {err}") from None  # one line, whatever the name
    return _replace(row, source=source, value_a=value_a, value_b=value_b, delta=test.difference,
                    ci_low=test.ci_low, ci_high=test.ci_high, p_value=test.p_value,
                    n_clusters=test.n_clusters, method=test.method)


def _decide(rows: Sequence[MetricComparison], alpha: float, correction: str) -> list[MetricComparison]:
    """Adjust the p-values of the compared rows together, then give verdicts and gate decisions."""
    adjusted = adjust_p_values([r.p_value if r.method else math.nan for r in rows], correction)
    out = []
    for row, p_adj in zip(rows, adjusted, strict=True):
        if not row.method:  # not compared
            out.append(row)
            continue
        verdict = _verdict(row.delta, float(p_adj), row.higher_is_better, alpha)
        worsening = -row.delta if row.higher_is_better else row.delta
        out.append(_replace(row, p_adjusted=float(p_adj), verdict=verdict,
                            regression=verdict == WORSE and worsening > row.threshold))
    return out


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
    correction: str = DEFAULT_CORRECTION,
) -> Comparison:
    """Compare B against A (see the module doc); bad input raises a TrecsEvalError (CLI exit 2).

    ``metrics`` restricts the gate to those metric names (default: every metric of either run).
    """
    if correction not in intervals.CORRECTIONS:
        hint = did_you_mean(correction, intervals.CORRECTIONS)
        raise ConfigError(f"unknown correction {correction!r}{hint}; "
                          f"available: {', '.join(intervals.CORRECTIONS)}")
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
        rows.append(_compare_one(a, b, system, metric, items, threshold, alpha, references))
    return Comparison(str(a.run_dir), str(b.run_dir), tuple(_decide(rows, alpha, correction)), n_resamples,
                      seed, alpha, tuple(warnings), correction)


def _check_reference(a: LoadedRun, b: LoadedRun, allow: bool, warnings: list[str]) -> None:
    ref_a, ref_b = a.features(REFERENCE_FEATURES), b.features(REFERENCE_FEATURES)
    if ref_a is None or ref_b is None or array_digest(ref_a) == array_digest(ref_b):
        return
    message = "the runs used different reference features (features/reference.npz differ)"
    if not allow:
        raise IdentityMismatchError(message,
                                    hint="pass --allow-mismatch to compare against run A's reference")
    warnings.append(message + "; using run A's")

"""The regression gate: compare run B against run A metric by metric, with paired tests.

For every (system, metric) both runs hold, ``delta = B - A`` of the number each run reports,
over the items both runs share and score (item i of A is paired with item i of B), with a
two-sided test of ``H0: delta = 0``. Which number and which test come from the metric's
declaration (``estimator``, ``missing``; :mod:`reports.compare_rows`):

* per-item means (CLIPScore, R-precision, trace-canvas accuracy, ...): paired over the items
  with a value in both runs (the rest are dropped and counted); a z-test of the mean difference
  with the cluster-robust (image) variance of the per-item differences.
* pooled ratios (canvas / segmentation pixel accuracy and mIoU): the ratio of the summed class
  counts, as the run reports it; a cluster-level delta-method z-test (cluster = image).
* FID, KID, FD-DINOv2: recomputed from ``features/*.npz``; a paired delta-method z-test
  (:func:`trecs_eval.metrics.intervals.paired_delta_test`): influence values of B minus those of
  A, summed per image, plus the reference items' (shared by both runs), clustered by image. No
  resampling (``benchmarks/bench_compare.py``). KID is the unbiased MMD² over all pairs.
* IS: a paired t-test over the per-split differences (both runs split the shared items with the
  same seeded permutation; the splits do not follow images, so with several narratives per
  image this test is somewhat liberal).
* Set statistics without a paired test (FID-inf, recall, coverage, CMMD): the row shows both
  reported values and is not tested.

**Never a blind pass.** A row whose number should be protected but cannot be tested (a failure,
a metric unavailable in one run only, missing features, fewer than 2 images with a value in
both runs, a non-finite p-value) is *untestable*: the gate fails (exit 1) and names it, unless
``allow_untestable``. A metric named in ``metrics`` or ``thresholds`` is protected even when it
is unavailable in both runs or has no paired test.

**Family-wise error.** One gate tests every metric of every system; ``correction`` (default
``holm``) adjusts the p-values over all tested rows so that the chance of *any* false alarm
when nothing changed is at most ``alpha`` (Holm 1979; ``bonferroni`` is more conservative,
``none`` controls each row alone). A change is *significant* when its adjusted p < alpha; its
direction (better / worse) comes from the metric's declared ``higher_is_better``. A
*regression* is a significant worsening larger than the metric's threshold (0 unless given);
it fails the gate (exit 1). The CI shown is the unadjusted 95 % interval of the delta.
Measured false-alarm rate: ``benchmarks/bench_gate.py`` and ``docs/gate.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from reports.compare_rows import item_ids, paired_test
from reports.load import LoadedRun, array_digest, as_run
from trecs_eval.errors import ConfigError, IdentityMismatchError, InputError, TrecsEvalError, UnknownNameError
from trecs_eval.errors import suggest as did_you_mean
from trecs_eval.metrics import intervals
from trecs_eval.metrics.intervals import DEFAULT_CORRECTION, adjust_p_values
from trecs_eval.metrics.resample import ReferenceSet
from trecs_eval.rundir import REFERENCE_FEATURES

BETTER, WORSE, NO_CHANGE, NOT_COMPARED = "better", "worse", "no significant change", "not compared"
DEFAULT_N_RESAMPLES = 1000
DEFAULT_ALPHA = 0.05
SOURCES = {"per_item_mean": "samples"}  # where a row's numbers come from; else features/*.npz


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
    estimator: str = ""
    n_dropped: int = 0
    dropped: str = ""
    untestable: bool = False
    named: bool = False


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
    allow_untestable: bool = False

    @property
    def regressions(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.regression]

    @property
    def untestable(self) -> list[MetricComparison]:
        """Rows the gate should have tested and could not (they fail it unless allowed)."""
        return [r for r in self.rows if r.untestable]

    @property
    def exit_code(self) -> int:
        """1 when any metric regressed beyond its threshold with significance, or a protected
        metric could not be tested (unless ``allow_untestable``), else 0."""
        return 1 if self.regressions or (self.untestable and not self.allow_untestable) else 0

    def to_dict(self) -> dict[str, object]:
        rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in asdict(r).items()} for r in self.rows]
        return {"run_a": self.run_a, "run_b": self.run_b, "n_resamples": self.n_resamples,
                "seed": self.seed, "alpha": self.alpha, "correction": self.correction,
                "allow_untestable": self.allow_untestable, "warnings": list(self.warnings),
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


def _shared_items(a: LoadedRun, b: LoadedRun, system: str, allow: bool, warnings: list[str]) -> list[str]:
    ordered_a = item_ids(a, system)
    ids_a, ids_b = set(ordered_a), set(item_ids(b, system))
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


def _compare_one(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                 row: MetricComparison, alpha: float, references: dict[str, ReferenceSet]
                 ) -> MetricComparison:
    """The row's paired test (:mod:`reports.compare_rows`), or why it has none: ``untestable``
    when a number the gate should protect could not be tested (the gate then fails), else skipped."""
    ra, rb = a.metric(system, metric), b.metric(system, metric)
    assert ra is not None and rb is not None
    failed = [name for name, r in (("A", ra), ("B", rb)) if r.status == "failed"]
    if failed:
        return _replace(row, reason=f"failed in run {' and '.join(failed)}", untestable=True)
    unavailable = [name for name, r in (("A", ra), ("B", rb)) if r.status == "unavailable"]
    if unavailable:  # e.g. IS with Inception weights that have no classifier
        return _replace(row, reason=f"unavailable in run {' and '.join(unavailable)}",
                        untestable=len(unavailable) == 1 or row.named)
    if len(items) < 2:
        return _replace(row, reason=f"{len(items)} shared items; at least 2 are needed", untestable=True)
    try:
        found = paired_test(a, b, system, metric, items, references, alpha)
    except TrecsEvalError as err:
        raise TrecsEvalError(f"comparing {system!r}/{metric}: {err}") from None  # one line, whatever the name
    if found is None:
        return _replace(row, value_a=ra.value, value_b=rb.value, untestable=row.named, source="results",
                        reason=f"no paired test for the set statistic {metric}; values as the runs report")
    if isinstance(found, str):
        return _replace(row, reason=found, untestable=True)
    test = found.test
    row = _replace(row, n=found.n, n_dropped=found.n_dropped, dropped=found.dropped, value_a=found.value_a,
                   value_b=found.value_b, delta=test.difference, ci_low=test.ci_low, ci_high=test.ci_high,
                   p_value=test.p_value, n_clusters=test.n_clusters)
    if not (math.isfinite(test.p_value) and math.isfinite(test.difference)):
        return _replace(row, untestable=True, reason=f"the paired test gave p = {test.p_value} "
                                                     f"(delta {test.difference}): not a number to decide on")
    return _replace(row, method=test.method)


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
    allow_untestable: bool = False,
) -> Comparison:
    """Compare B against A (see the module doc); bad input raises a TrecsEvalError (CLI exit 2).

    ``metrics`` restricts the gate to those metric names (default: every metric of either run);
    ``allow_untestable`` lets a gate pass although some protected rows could not be tested.
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
    named = set(metrics or ()) | set(thresholds)
    for system, metric in tqdm(pairs, desc="paired tests", unit="metric", disable=not progress):
        ra, rb = a.metric(system, metric), b.metric(system, metric)
        assert ra is not None and rb is not None
        if ra.higher_is_better != rb.higher_is_better:
            raise InputError(f"metric {metric!r} declares opposite directions in the two runs",
                             path=str(b.run_dir / "results.json"), field="higher_is_better")
        estimator = a.info(metric).resolved_estimator
        row = MetricComparison(system, metric, ra.higher_is_better, SOURCES.get(estimator, "features"),
                               len(shared[system]), estimator=estimator, named=metric in named,
                               threshold=_threshold_for(metric, ra.higher_is_better, thresholds))
        rows.append(_compare_one(a, b, system, metric, shared[system], row, alpha, references))
    return Comparison(str(a.run_dir), str(b.run_dir), tuple(_decide(rows, alpha, correction)), n_resamples,
                      seed, alpha, tuple(warnings), correction, allow_untestable)


def _check_reference(a: LoadedRun, b: LoadedRun, allow: bool, warnings: list[str]) -> None:
    ref_a, ref_b = a.features(REFERENCE_FEATURES), b.features(REFERENCE_FEATURES)
    if ref_a is None or ref_b is None or array_digest(ref_a) == array_digest(ref_b):
        return
    message = "the runs used different reference features (features/reference.npz differ)"
    if not allow:
        raise IdentityMismatchError(message,
                                    hint="pass --allow-mismatch to compare against run A's reference")
    warnings.append(message + "; using run A's")

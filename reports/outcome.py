"""What each (system, metric) cell of a report is: a number, or one of three different non-numbers.

* a **value** (``ok``, or ``uncalibrated`` when the extractor ran on random weights);
* **not applicable**: the run holds no result for the pair, because the metric does not apply to
  the system (a canvas metric for a system that draws no canvas); nothing went wrong;
* **unavailable (why)**: the metric was planned but the extractor cannot give it here (IS with
  Inception weights that have no classifier); the result's warnings say why;
* **failed (why)**: the computation failed; the result's warnings say why.

Calibration is a property of each result (its ``status`` and its extractor identity's
``uncalibrated`` flag), never of the whole run: a run may mix real Inception with random CLIP,
and only the CLIP numbers carry the stamp.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.load import LoadedRun
from trecs_eval.metrics.types import MetricResult

VALUE, NOT_APPLICABLE, UNAVAILABLE, FAILED = "value", "not applicable", "unavailable", "failed"
NO_REASON = "no reason recorded"


def is_uncalibrated(result: MetricResult | None) -> bool:
    """True when ``result`` holds a number computed with random (uncalibrated) weights."""
    if result is None:
        return False
    return result.status == "uncalibrated" or bool(result.extractor.get("uncalibrated", False))


def state(result: MetricResult | None) -> str:
    """:data:`VALUE`, :data:`NOT_APPLICABLE`, :data:`UNAVAILABLE` or :data:`FAILED`."""
    if result is None:
        return NOT_APPLICABLE
    if result.status in (UNAVAILABLE, FAILED):
        return result.status
    return VALUE


def reason(result: MetricResult | None) -> str:
    """Why a result has no number: its warnings, joined (one line: newlines become spaces)."""
    if result is None or not result.warnings:
        return NO_REASON
    return " ".join("; ".join(str(w) for w in result.warnings).split())


@dataclass(frozen=True)
class MetricOutcomes:
    """One metric across a run's systems: who has a number, and why the others do not."""

    metric: str
    label: str
    results: dict[str, MetricResult | None]

    def systems_in(self, wanted: str) -> list[str]:
        return [s for s, r in self.results.items() if state(r) == wanted]

    @property
    def drawn(self) -> list[str]:
        """Systems a chart shows: all but the not-applicable ones (a failure keeps its slot)."""
        return [s for s, r in self.results.items() if state(r) != NOT_APPLICABLE]

    @property
    def has_values(self) -> bool:
        return bool(self.systems_in(VALUE))

    @property
    def stamped(self) -> bool:
        """Any number of this metric came from random weights: its chart carries the stamp."""
        return any(is_uncalibrated(r) for r in self.results.values() if state(r) == VALUE)

    def notes(self) -> list[str]:
        """One line per kind of non-number: not applicable to whom; unavailable / failed for whom, why."""
        lines = []
        absent = self.systems_in(NOT_APPLICABLE)
        if absent:
            lines.append(f"not applicable to {', '.join(absent)} (the metric does not apply to them)")
        for kind in (UNAVAILABLE, FAILED):
            by_reason: dict[str, list[str]] = {}
            for system in self.systems_in(kind):
                by_reason.setdefault(reason(self.results[system]), []).append(system)
            lines += [f"{kind} for {', '.join(systems)}: {why}" for why, systems in by_reason.items()]
        return lines

    def line(self) -> str:
        """The one line that replaces a chart when no system has a number."""
        kinds = {state(r) for r in self.results.values()}
        if len(kinds) == 1 and NOT_APPLICABLE in kinds:
            return f"{self.label}: not applicable to any system of this run (no result for any system)"
        if len(kinds) == 1:
            kind = kinds.pop()
            whys = dict.fromkeys(reason(r) for r in self.results.values())
            return f"{self.label}: {kind} for every system: {' / '.join(whys)}"
        return f"{self.label}: no system has a value; " + "; ".join(self.notes())


def shown_metrics(run: LoadedRun) -> list[str]:
    """Metrics with a result, then those the run's config lists that have none at all (a canvas
    metric in a run whose systems draw no canvas): the report says so instead of dropping them."""
    configured = run.results.config.get("metrics", []) if isinstance(run.results.config, dict) else []
    names = [m.get("name") if isinstance(m, dict) else m for m in configured if isinstance(m, dict | str)]
    return list(dict.fromkeys([*run.metric_names, *(n for n in names if isinstance(n, str) and n)]))


def metric_outcomes(run: LoadedRun, metric: str, label: str) -> MetricOutcomes:
    return MetricOutcomes(metric, label, {s: run.metric(s, metric) for s in run.systems})


def column_stamped(run: LoadedRun, column: str) -> bool:
    """A per-sample column of samples.parquet holds random-weight numbers: it belongs to a metric
    (its own name, or the longest metric name it extends, ``r_precision_rank``) that is stamped."""
    owners = [m for m in run.metric_names if column == m or column.startswith(m + "_")]
    return bool(owners) and metric_outcomes(run, max(owners, key=len), column).stamped

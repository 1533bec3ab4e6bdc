"""Matplotlib figures (Agg backend) for the HTML report, returned as embeddable ``data:`` PNG URIs.

Figures: one bar chart per metric with 95 % CI whiskers, a per-label accuracy chart, the
distribution of each per-sample score per system, and metric histories across runs.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: reports are built headless (CI)
import matplotlib.pyplot as plt
import numpy as np

from reports.load import LoadedRun
from reports.outcome import FAILED, UNAVAILABLE, VALUE, MetricOutcomes, state
from reports.tables import display_name

FIGURE_DPI = 96
PER_LABEL_TOP = 30  # labels shown in the per-label chart (most frequent first); the rest are summarized


LOG_SCALE_SPAN = 100.0


def figure_to_uri(fig: plt.Figure) -> str:
    """PNG bytes of ``fig`` as a ``data:image/png;base64,...`` URI; closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def wants_log_scale(values: Sequence[float]) -> bool:
    """True when all finite values are positive and span more than ``LOG_SCALE_SPAN``.

    One far-off system (noise's FID of 5e5) would otherwise flatten every other bar.
    """
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > LOG_SCALE_SPAN


# Labels of the slots that hold no bar; each non-number is said for what it is (reports.outcome).
SLOT_COLOURS = {UNAVAILABLE: "#8a6d00", FAILED: "#b00020"}
STAMP_TEXT = "UNCALIBRATED"


def metric_bars(outcomes: MetricOutcomes) -> str:
    """Bar per system with asymmetric 95 % CI whiskers, for the systems the metric applies to.

    An unavailable or failed system keeps its slot, labelled ``unavailable`` or ``failed``; a
    not-applicable one gets no slot (the caption says so). The chart is stamped UNCALIBRATED only
    when one of its own numbers came from random weights (:attr:`MetricOutcomes.stamped`).
    """
    systems = outcomes.drawn
    results = [outcomes.results[s] for s in systems]
    values = [r.value if r is not None and state(r) == VALUE else math.nan for r in results]
    lows = [max(v - r.ci_low, 0.0) if r is not None and math.isfinite(r.ci_low) else 0.0
            for v, r in zip(values, results, strict=True)]
    highs = [max(r.ci_high - v, 0.0) if r is not None and math.isfinite(r.ci_high) else 0.0
             for v, r in zip(values, results, strict=True)]
    direction = next((r.higher_is_better for r in results if r is not None), None)
    arrow = "" if direction is None else (" (higher is better)" if direction else " (lower is better)")
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(systems) + 1.5), 2.8))
    x = np.arange(len(systems))
    drawn = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)  # bar height only; labelled below
    ax.bar(x, drawn, color="#4c72b0", yerr=[lows, highs], capsize=4, ecolor="#222222")
    for xi, value, result in zip(x, values, results, strict=True):
        if not math.isfinite(value):
            kind = state(result) if state(result) != VALUE else FAILED  # a non-finite "ok" value
            ax.text(xi, 0, kind, ha="center", va="bottom", rotation=90, color=SLOT_COLOURS[kind])
    ax.set_xticks(x, systems, rotation=20, ha="right")
    if wants_log_scale(values):
        ax.set_yscale("log")
        arrow += ", log scale"
    ax.set_title(outcomes.label + arrow, fontsize=10)
    if outcomes.stamped:
        stamp(ax)
    return figure_to_uri(fig)


def stamp(ax: plt.Axes) -> None:
    """The UNCALIBRATED watermark, for a chart whose own numbers came from random weights."""
    ax.text(0.5, 0.5, STAMP_TEXT, transform=ax.transAxes, ha="center", va="center",
            fontsize=18, color="#b00020", alpha=0.35, rotation=20)


def per_label_values(run: LoadedRun) -> dict[str, dict[str, dict[str, float]]]:
    """``{metric: {system: {label: value}}}`` from metric params whose key starts with ``per_label``."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    for result in run.results.metrics:
        for key, value in result.params.items():
            if key.startswith("per_label") and isinstance(value, Mapping) and value:
                values = {str(label): float(v) for label, v in value.items() if v is not None}
                found.setdefault(result.name, {})[result.system] = values
    return found


def per_label_chart(metric: str, by_system: Mapping[str, Mapping[str, float]], stamped: bool = False) -> str:
    """Grouped horizontal bars: one group per label (up to PER_LABEL_TOP labels), one bar per system."""
    labels = sorted({label for values in by_system.values() for label in values})
    mean = {lab: np.nanmean([v.get(lab, np.nan) for v in by_system.values()]) for lab in labels}
    labels = sorted(labels, key=lambda lab: -mean[lab])[:PER_LABEL_TOP]
    systems = list(by_system)
    height = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(6.0, 0.25 * len(labels) * max(1, len(systems) / 2) + 1.2))
    y = np.arange(len(labels))
    for i, system in enumerate(systems):
        vals = [by_system[system].get(lab, np.nan) for lab in labels]
        ax.barh(y + i * height, np.nan_to_num(vals, nan=0.0), height, label=system)
    ax.set_yticks(y + height * (len(systems) - 1) / 2, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(display_name(metric) + " per label")
    ax.legend(fontsize=7, loc="lower right")
    if stamped:
        stamp(ax)
    return figure_to_uri(fig)


def distribution_chart(run: LoadedRun, column: str, stamped: bool = False) -> str:
    """Box plot (with the individual points) of one per-sample score for each system."""
    assert run.samples is not None
    systems = run.systems
    by_system = [run.samples.loc[run.samples["system"] == s, column] for s in systems]
    data = [values.dropna().to_numpy(dtype=float) for values in by_system]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(systems) + 1.5), 2.8))
    ax.boxplot([d if d.size else [np.nan] for d in data], showfliers=False)
    rng = np.random.default_rng(0)  # jitter of the strip points only (display, not a result)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, s=6, alpha=0.5, color="#dd8452")
    ax.set_xticks(range(1, len(systems) + 1), systems, rotation=20, ha="right")
    missing = sum(int(values.isna().sum()) for values in by_system)
    counts = ", ".join(str(d.size) for d in data)
    ax.set_title(f"{display_name(column, run)} per sample (n = {counts}"
                 + (f"; {missing} missing values not drawn)" if missing else ")"), fontsize=9)
    if stamped:
        stamp(ax)
    return figure_to_uri(fig)


def history_chart(metric: str, x_labels: Sequence[str], series: Mapping[str, Sequence[float]],
                  higher_is_better: bool | None) -> str:
    """One line per system across runs (x: run date + commit, oldest first); gaps where a run lacks it."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(x_labels) + 2), 2.8))
    x = np.arange(len(x_labels))
    for system, values in series.items():
        ax.plot(x, np.asarray(values, dtype=float), marker="o", label=system)
    ax.set_xticks(x, x_labels, rotation=30, ha="right", fontsize=7)
    arrow = "" if higher_is_better is None else (" ↑" if higher_is_better else " ↓")
    ax.set_title(display_name(metric) + arrow, fontsize=10)
    ax.legend(fontsize=7)
    return figure_to_uri(fig)

"""One Table model, rendered to Markdown, LaTeX (booktabs), CSV and HTML.

The default layout follows the TReCS paper's main comparison (rows: systems; columns: IS ↑,
FID ↓, R-precision ↑), extended with KID, CLIPScore and label-canvas accuracy; any other metric
in the run follows. Column headers and order come from each metric's declaration
(``MetricInfo`` in results.json: ``display_name``, ``column_order``), directions (↑/↓) and the
bold best value per column from each ``MetricResult.higher_is_better``, never from a list here.
Uncertainty is the 95 % CI. Style ``pm`` (default) prints ``value ± half-width`` only where the
interval is symmetric about the value (delta-method FID/KID, t-interval IS:
``|(high - value) - (value - low)|`` within :data:`SYMMETRY_REL_TOL` of the width) and
``value [low, high]`` everywhere else (percentile bootstraps are not symmetric: a ``±`` would
claim a half-width the interval never had); ``interval`` always prints ``value [low, high]``.
Every format renders the same cell text.

Uncalibrated results (random weights) carry a ``†`` in every cell and a banner in every
format (a ``calibration`` column in CSV), so they can never pass for real numbers. A failed
metric shows ``failed``, an unavailable one ``unavailable`` (a footnote says why for each), a
metric that does not apply to a system (no result for the pair) ``n/a``: never a number.
A per-item mean or pooled ratio computed on fewer items than the system has (items without a
value are excluded by the metric's declared ``missing`` rule) shows ``(n=K)``; a footnote names
the pooled ratios (``estimator`` of the declaration: a ratio of summed counts, not a mean of
per-item ratios). Names (run id, systems, metric headers) are untrusted and escaped per format
(:mod:`reports.escape`).
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reports.escape import csv_text, md_text, one_line
from reports.load import LoadedRun, as_run, declared_info
from reports.outcome import is_uncalibrated, reason
from trecs_eval.errors import InputError
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import RESULTS_FILE

UNCALIBRATED_MARK = "†"
UNCALIBRATED_BANNER = (f"UNCALIBRATED: numbers marked {UNCALIBRATED_MARK} were computed with random "
                       "(untrained) weights; they are not comparable to published results")
UNAVAILABLE_NOTE = ("unavailable: the extractor cannot give this metric here; the result's warnings say "
                    "why (IS needs Inception's 1008-way classifier, which the NVIDIA-format FID weights "
                    "lack; a segmenter-based metric needs images the segmenter can label).")
NOT_APPLICABLE_NOTE = ("n/a: not applicable: there is no result of this metric for this row (the metric "
                       "does not apply, e.g. a canvas metric for a system that draws no canvas).")
CI_STYLES = ("pm", "interval", "none")
SYMMETRY_REL_TOL = 1e-6  # symmetric intervals agree to round-off; bootstrap ones differ by percent
ITEM_ESTIMATORS = ("per_item_mean", "pooled_ratio")  # their n counts the system's items with a value
PARTIAL_NOTE = "(n=K): computed on the K items that have a value; the others are excluded and counted."


def display_name(metric: str, run: LoadedRun | None = None) -> str:
    """A metric's column header, from its declaration (``MetricInfo.display_name``): the run's
    ``results.json`` when ``run`` is given, else the installed metric registry."""
    return (run.info(metric) if run is not None else declared_info(metric)).label


OTHER_FAMILY = "other"


def metric_family(metric: str, run: LoadedRun | None = None) -> str:
    """The group a metric is shown in (``MetricInfo.family``): the run's declaration, else the
    installed registry's (runs written before metrics declared one), else :data:`OTHER_FAMILY`."""
    declared = run.info(metric).family if run is not None else ""
    return declared or declared_info(metric).family or OTHER_FAMILY


def families(metrics: Sequence[str], run: LoadedRun | None = None) -> dict[str, list[str]]:
    """``{family: metrics}``, families in the order their first metric appears in ``metrics``."""
    grouped: dict[str, list[str]] = {}
    for metric in metrics:
        grouped.setdefault(metric_family(metric, run), []).append(metric)
    return grouped


@dataclass(frozen=True)
class Column:
    """A metric column: its key in results.json, header text, direction and display precision."""

    key: str
    header: str
    higher_is_better: bool | None
    decimals: int
    estimator: str = ""

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better is None else ("↑" if self.higher_is_better else "↓")


@dataclass(frozen=True)
class Cell:
    """One value; ``status`` is ok | uncalibrated | failed | unavailable | not_applicable (no result).

    ``why``: the reason a failed or unavailable cell has no number (the result's warnings)."""

    value: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    status: str = "not_applicable"
    why: str = ""
    n: int | None = None  # set only when fewer items than the system's carry the value

    @property
    def has_value(self) -> bool:
        return self.status in ("ok", "uncalibrated") and math.isfinite(self.value)

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)

    @property
    def symmetric(self) -> bool:
        """The interval is ``value ± h`` (to :data:`SYMMETRY_REL_TOL` of its width)."""
        upper, lower = self.ci_high - self.value, self.value - self.ci_low
        return abs(upper - lower) <= SYMMETRY_REL_TOL * max(self.ci_high - self.ci_low, 0.0)


@dataclass(frozen=True)
class Table:
    """Rows of labelled cells under metric columns, plus the calibration state of the whole table."""

    title: str
    columns: tuple[Column, ...]
    row_labels: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]
    uncalibrated: bool = False
    ci_style: str = "pm"
    row_header: str = "System"

    def __post_init__(self) -> None:
        if self.ci_style not in CI_STYLES:
            raise ValueError(f"ci_style must be one of {CI_STYLES}, got {self.ci_style!r}")
        if len(self.cells) != len(self.row_labels) or any(len(r) != len(self.columns) for r in self.cells):
            raise ValueError("cells must be len(row_labels) rows of len(columns) cells")

    def best_rows(self, col: int) -> set[int]:
        """Rows holding the best displayed value of column ``col`` (ties all win); none if undirected.

        Calibrated values compete among themselves; uncalibrated ones only when nothing else is there.
        A lone value is nobody's best: bold needs at least two values to compare.
        """
        column = self.columns[col]
        if column.higher_is_better is None:
            return set()
        candidates = [r for r, row in enumerate(self.cells) if row[col].has_value]
        calibrated = [r for r in candidates if self.cells[r][col].status == "ok"]
        shown = {r: round(self.cells[r][col].value, column.decimals) for r in (calibrated or candidates)}
        if len(shown) < 2:
            return set()
        best = max(shown.values()) if column.higher_is_better else min(shown.values())
        return {r for r, v in shown.items() if v == best}

    def _number(self, cell: Cell, column: Column) -> str:
        value = f"{cell.value:.{column.decimals}f}"
        if self.ci_style == "none" or not cell.has_ci:
            return value
        if self.ci_style == "pm" and cell.symmetric:
            return f"{value} ± {(cell.ci_high - cell.ci_low) / 2:.{column.decimals}f}"
        return f"{value} [{cell.ci_low:.{column.decimals}f}, {cell.ci_high:.{column.decimals}f}]"

    def text(self, row: int, col: int) -> str:
        """Plain text of a cell (no emphasis): number, CI and uncalibrated mark; failed, unavailable, n/a."""
        cell = self.cells[row][col]
        if cell.status in ("failed", "unavailable"):
            return cell.status
        if not cell.has_value:
            return "n/a"
        # each cell carries its own calibration: a run may mix real Inception and random CLIP
        mark = UNCALIBRATED_MARK if cell.status == "uncalibrated" else ""
        partial = f" (n={cell.n})" if cell.n is not None else ""
        return self._number(cell, self.columns[col]) + mark + partial

    def footnotes(self) -> list[str]:
        notes = self._common_notes()
        for c, column in enumerate(self.columns):  # why each failed / unavailable cell has no number
            by_reason: dict[tuple[str, str], list[str]] = {}
            for label, row in zip(self.row_labels, self.cells, strict=True):
                if row[c].status in ("failed", "unavailable") and row[c].why:
                    by_reason.setdefault((row[c].status, row[c].why), []).append(label)
            notes += [f"{column.header}: {status} for {', '.join(labels)}: {why}"
                      for (status, why), labels in by_reason.items()]
        return notes

    def _common_notes(self) -> list[str]:
        notes = []
        if self.ci_style != "none":
            form = ("value ± half-width where the interval is symmetric, else value [low, high]"
                    if self.ci_style == "pm" else "value [low, high]")
            notes.append(f"Uncertainty: 95 % confidence interval, shown as {form}. Bold: best per column.")
        if self.uncalibrated or any(c.status == "uncalibrated" for row in self.cells for c in row):
            notes.append(f"{UNCALIBRATED_MARK} {UNCALIBRATED_BANNER}.")
        if any(c.status == "unavailable" and not c.why for row in self.cells for c in row):
            notes.append(UNAVAILABLE_NOTE)
        if any(c.status == "not_applicable" for row in self.cells for c in row):
            notes.append(NOT_APPLICABLE_NOTE)
        if any(c.n is not None for row in self.cells for c in row):
            notes.append(PARTIAL_NOTE)
        if pooled := [c.header for c in self.columns if c.estimator == "pooled_ratio"]:
            notes.append(f"Pooled ratios (summed counts over the set, not a mean of per-image values): "
                         f"{', '.join(dict.fromkeys(pooled))}.")
        return notes

    def to_markdown(self) -> str:
        lines = []
        if self.uncalibrated:
            lines += [f"> **{UNCALIBRATED_BANNER}**", ""]
        lines += [f"**{md_text(self.title)}**", ""]
        headers = [self.row_header] + [f"{c.header} {c.arrow}".strip() for c in self.columns]
        lines.append("| " + " | ".join(md_text(h) for h in headers) + " |")
        lines.append("|" + "---|" + "".join("---:|" for _ in self.columns))
        best = [self.best_rows(c) for c in range(len(self.columns))]
        for r, label in enumerate(self.row_labels):
            texts = [f"**{md_text(self.text(r, c))}**" if r in best[c] else md_text(self.text(r, c))
                     for c in range(len(self.columns))]
            lines.append("| " + " | ".join([md_text(label), *texts]) + " |")
        lines += [""] + [f"{md_text(n)}  " for n in self.footnotes()]
        return "\n".join(lines).rstrip() + "\n"

    def to_latex(self) -> str:
        best = [self.best_rows(c) for c in range(len(self.columns))]
        caption = _latex_escape(self.title)
        if self.uncalibrated:
            caption = rf"\textbf{{{_latex_escape(UNCALIBRATED_BANNER)}.}} " + caption
        lines = [f"% {UNCALIBRATED_BANNER}"] if self.uncalibrated else []
        lines += [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
                  r"\begin{tabular}{l" + "r" * len(self.columns) + "}", r"\toprule"]
        arrows = {"↑": r" $\uparrow$", "↓": r" $\downarrow$", "": ""}
        headers = [_latex_escape(self.row_header)]
        headers += [_latex_escape(c.header) + arrows[c.arrow] for c in self.columns]
        lines += [" & ".join(headers) + r" \\", r"\midrule"]
        for r, label in enumerate(self.row_labels):
            texts = []
            for c in range(len(self.columns)):
                text = _latex_escape(self.text(r, c)).replace(" ± ", r" $\pm$ ")
                text = text.replace(UNCALIBRATED_MARK, r"\textsuperscript{\dag}")
                texts.append(rf"\textbf{{{text}}}" if r in best[c] else text)
            lines.append(" & ".join([_latex_escape(label), *texts]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        notes = [_latex_escape(n).replace(UNCALIBRATED_MARK, r"\dag{}").replace("±", r"$\pm$")
                 for n in self.footnotes()]
        if notes:
            lines.append(r"\par\smallskip{\footnotesize " + r" \\ ".join(notes) + "}")
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """Machine-readable: full-precision value, CI bounds and status per metric; a calibration column."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header = [self.row_header.lower()]
        for c in self.columns:
            header += [c.key, f"{c.key}_ci_low", f"{c.key}_ci_high", f"{c.key}_status"]
        writer.writerow([csv_text(h) for h in [*header, "calibration"]])
        for label, row in zip(self.row_labels, self.cells, strict=True):
            uncalibrated = any(c.status == "uncalibrated" for c in row)
            calibration = "UNCALIBRATED (random weights)" if uncalibrated else "calibrated"
            values: list[str] = [csv_text(label)]  # numbers below stay numbers
            for cell in row:
                values += [_csv_float(cell.value if cell.has_value else math.nan),
                           _csv_float(cell.ci_low), _csv_float(cell.ci_high), cell.status]
            writer.writerow([*values, calibration])
        return buffer.getvalue()

    def to_html(self, banner: bool = True, notes: bool = True) -> str:
        """A ``<table>`` fragment (escaped), with the uncalibrated banner above it when needed
        (``banner``; a page that shows its own passes False) and the footnotes below (``notes``)."""
        esc = html.escape
        best = [self.best_rows(c) for c in range(len(self.columns))]
        parts = []
        if banner and self.uncalibrated:
            parts.append(f'<div class="banner uncalibrated">{esc(UNCALIBRATED_BANNER)}</div>')
        parts.append(f'<table class="summary"><caption>{esc(self.title)}</caption><thead><tr>')
        parts.append(f"<th>{esc(self.row_header)}</th>")
        parts += [f'<th title="{esc(c.key)}">{esc(c.header)} {c.arrow}</th>' for c in self.columns]
        parts.append("</tr></thead><tbody>")
        for r, label in enumerate(self.row_labels):
            parts.append(f"<tr><th>{esc(label)}</th>")
            for c in range(len(self.columns)):
                text = esc(self.text(r, c))
                cell = self.cells[r][c]
                status = esc(cell.status, quote=True)  # results.json is untrusted input
                why = f' title="{esc(cell.why, quote=True)}"' if cell.why else ""
                shown = f"<strong>{text}</strong>" if r in best[c] else text
                parts.append(f'<td class="{status}"{why}>{shown}</td>')
            parts.append("</tr>")
        parts.append("</tbody></table>")
        parts += [f'<p class="note">{esc(n)}</p>' for n in self.footnotes()] if notes else []
        return "".join(parts)

    def subset(self, columns: Sequence[int], title: str) -> Table:
        """The same rows under some of the columns (bold and notes are per column: unchanged)."""
        return Table(title, tuple(self.columns[c] for c in columns), self.row_labels,
                     tuple(tuple(row[c] for c in columns) for row in self.cells),
                     self.uncalibrated, self.ci_style, self.row_header)

    def render(self, fmt: str) -> str:
        renderers = {"md": self.to_markdown, "tex": self.to_latex, "csv": self.to_csv, "html": self.to_html}
        return renderers[fmt]()


def _csv_float(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in one_line(text))


def column_decimals(values: Sequence[float]) -> int:
    """Decimals for a column from its median magnitude: 1 from 100, 2 from 1, 3 from 0.1, else 4.

    The median, not the largest value: one far-off system (noise's KID of 1e7) must not round every
    other system's KID of 0.03 to "0.0".
    """
    finite = sorted(abs(v) for v in values if math.isfinite(v))
    typical = finite[(len(finite) - 1) // 2] if finite else 0.0
    return 1 if typical >= 100 else 2 if typical >= 1 else 3 if typical >= 0.1 else 4


def ordered_metrics(names: Sequence[str], run: LoadedRun | None = None) -> list[str]:
    """Columns by each metric's declared ``column_order`` (the paper's order first: IS, FID,
    R-precision, then the extensions), ties and undeclared metrics alphabetically."""
    info = {name: run.info(name) if run is not None else declared_info(name) for name in names}
    return sorted(dict.fromkeys(names), key=lambda name: (info[name].column_order, name))


def result_cell(run: LoadedRun, result: MetricResult | None) -> Cell:
    """A result as a table cell: its own calibration, why it has no number where it has none, and
    ``n`` when a per-item estimator had fewer items than the system."""
    if result is None:
        return Cell()
    status = "uncalibrated" if result.status == "ok" and is_uncalibrated(result) else result.status
    why = reason(result) if status in ("failed", "unavailable") and result.warnings else ""
    system = next((s for s in run.results.systems if s.name == result.system), None)
    n_items = getattr(system, "n_items", None)
    partial = (run.info(result.name).resolved_estimator in ITEM_ESTIMATORS and n_items is not None
               and 0 < result.n < n_items)
    return Cell(result.value, result.ci_low, result.ci_high, status, why, n=result.n if partial else None)


def summary_table(run: LoadedRun | Path, metrics: Sequence[str] | None = None, ci_style: str = "pm") -> Table:
    """The run's main table: one row per system, one column per metric (paper order first)."""
    run = as_run(run)
    names = list(metrics) if metrics is not None else ordered_metrics(run.metric_names, run)
    columns, grid = [], [[] for _ in run.systems]
    for name in names:
        results = [run.metric(s, name) for s in run.systems]
        declared = {m.higher_is_better for m in results if m is not None}
        if len(declared) > 1:
            raise InputError(f"metric {name!r} declares both directions across systems",
                             path=str(run.run_dir / RESULTS_FILE), field="higher_is_better")
        cells = [result_cell(run, m) for m in results]
        decimals = column_decimals([c.value for c in cells if c.has_value])
        columns.append(Column(name, display_name(name, run), declared.pop() if declared else None, decimals,
                              run.info(name).resolved_estimator))
        for row, cell in zip(grid, cells, strict=True):
            row.append(cell)
    dataset = run.results.dataset.get("name") or run.results.dataset.get("split") or ""
    title = f"Run {run.results.run_id}" + (f" on {dataset}" if dataset else "")
    return Table(title, tuple(columns), tuple(run.systems), tuple(tuple(r) for r in grid),
                 uncalibrated=run.uncalibrated, ci_style=ci_style)

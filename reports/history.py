"""Metric history across runs: every run directory under RUNS_DIR, ordered by creation time.

Rows of the history table are runs (``created`` date + short git commit), columns are
(system, metric) pairs; a run that lacks a pair shows ``n/a``. Each metric also gets a line
chart (one line per system) in the HTML form.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from reports import plots
from reports.html import TEMPLATE_DIR
from reports.load import LoadedRun, load_run
from reports.tables import Cell, Column, Table, column_decimals, display_name, ordered_metrics, result_cell
from trecs_eval.errors import InputError
from trecs_eval.results import RESULTS_FILE

log = logging.getLogger(__name__)

HISTORY_FORMATS = ("md", "tex", "csv", "html")


@dataclass(frozen=True)
class History:
    """Runs found under one directory, oldest first."""

    runs_dir: Path
    runs: tuple[LoadedRun, ...]
    skipped: tuple[str, ...] = ()  # one line per run directory that could not be read, and why

    def run_label(self, run: LoadedRun) -> str:
        commit = (run.results.git_commit or "no-commit")[:8]
        return f"{run.results.created[:19].replace('T', ' ')} {commit} ({run.results.run_id})"

    def pairs(self) -> list[tuple[str, str]]:
        """(system, metric) pairs seen in any run, systems in first-seen order, metrics in paper order."""
        systems = list(dict.fromkeys(s for run in self.runs for s in run.systems))
        metrics = ordered_metrics(list(dict.fromkeys(m for run in self.runs for m in run.metric_names)),
                                  self.runs[-1] if self.runs else None)
        seen = {(m.system, m.name) for run in self.runs for m in run.results.metrics}
        return [(s, m) for m in metrics for s in systems if (s, m) in seen]

    def _cell(self, run: LoadedRun, system: str, metric: str) -> Cell:
        return result_cell(run, run.metric(system, metric))  # each result carries its own calibration

    def _direction(self, system: str, metric: str) -> bool | None:
        declared = {r.higher_is_better for run in self.runs if (r := run.metric(system, metric)) is not None}
        return declared.pop() if len(declared) == 1 else None

    def table(self, ci_style: str = "pm") -> Table:
        pairs = self.pairs()
        grid = [[self._cell(run, s, m) for s, m in pairs] for run in self.runs]
        columns = []
        for j, (system, metric) in enumerate(pairs):
            decimals = column_decimals([row[j].value for row in grid if row[j].has_value])
            columns.append(Column(f"{system}:{metric}", f"{system} {display_name(metric, self.runs[-1])}",
                                  self._direction(system, metric), decimals,
                                  self.runs[-1].info(metric).resolved_estimator))
        return Table(f"Metric history of {self.runs_dir}", tuple(columns),
                     tuple(self.run_label(r) for r in self.runs), tuple(tuple(r) for r in grid),
                     uncalibrated=False, ci_style=ci_style, row_header="Run")

    def charts(self) -> list[tuple[str, str]]:
        """One line chart per metric: x = runs (oldest first), one series per system."""
        labels = [self.run_label(r).split(" (")[0] for r in self.runs]
        charts = []
        for metric in dict.fromkeys(m for _, m in self.pairs()):
            systems = [s for s, m in self.pairs() if m == metric]
            series = {s: [_value(run, s, metric) for run in self.runs] for s in systems}
            direction = self._direction(systems[0], metric)
            header = display_name(metric, self.runs[-1])
            charts.append((header, plots.history_chart(metric, labels, series, direction)))
        return charts


def _value(run: LoadedRun, system: str, metric: str) -> float:
    result = run.metric(system, metric)
    return math.nan if result is None or result.status == "failed" else result.value


def load_history(runs_dir: Path | str) -> History:
    """Every immediate subdirectory with a results.json, sorted by (created, run_id)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise InputError("not a directory", path=str(runs_dir),
                         hint="pass the folder that holds run directories")
    found: list[LoadedRun] = []
    skipped: list[str] = []
    for folder in sorted(runs_dir.iterdir()):
        if not (folder / RESULTS_FILE).is_file():
            continue
        try:
            found.append(load_run(folder))
        except InputError as err:  # one damaged run must not hide the history of the others
            log.warning("history: skipping %s (%s)", folder, err.message)
            skipped.append(f"{folder.name}: {err.message}")
    if not found:
        reason = f"; skipped: {skipped[0]}" if skipped else ""
        raise InputError(f"no readable run directories (subfolders with {RESULTS_FILE}) here{reason}",
                         path=str(runs_dir))
    found.sort(key=lambda r: (r.results.created, r.results.run_id))
    return History(runs_dir, tuple(found), tuple(skipped))


def render_history(history: History, fmt: str) -> str:
    """The history table in ``fmt`` (md/tex/csv), or a standalone HTML page with charts and table."""
    if fmt != "html":
        return history.table().render(fmt)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("history.html.j2").render(
        title=f"trecs-eval history: {history.runs_dir.name}", charts=history.charts(),
        table_html=Markup(history.table().to_html()),  # the Table renderer escapes every cell itself
        n_runs=len(history.runs), skipped=history.skipped,
    )

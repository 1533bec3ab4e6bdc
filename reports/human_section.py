"""Human-study results in the report and the gate, read from a study's ``analysis.json``
(written by ``trecs-eval human analyze``; the study's hash must still match).

* :func:`add_human_columns`: the summary table gains one column per question, "Human <question>
  win %" (↑): each system's win rate against all other systems of the study pooled, ties split,
  two-way clustered 95 % interval (n/a for a system the study did not judge).
* :func:`html`: the pairwise win-rate table as an HTML section (every cell escaped).
* :func:`human_gate`: ``QUESTION:SYSTEM:OPPONENT:MIN`` fails when the whole 95 % interval of
  SYSTEM's win rate against OPPONENT lies below MIN (significantly worse, as the metric gate).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any

from reports.tables import Cell, Column, Table
from trecs_eval.errors import ConfigError, InputError, TrecsEvalError

ANALYSIS_FILE = "analysis.json"


def load_analysis(study_dir: Path) -> dict[str, Any]:
    from trecs_eval.human.study import load_study

    study = load_study(study_dir)
    path = Path(study_dir) / ANALYSIS_FILE
    if not path.is_file():
        raise TrecsEvalError(f"{study_dir}: no {ANALYSIS_FILE}",
                             hint=f"run `trecs-eval human analyze {study_dir}`")
    try:
        analysis = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err})", path=str(path)) from None
    if analysis.get("study_hash") != study.digest:
        raise InputError("the analysis belongs to another version of the study; re-run `human analyze`",
                         path=str(path), field="study_hash")
    return analysis


def _num(value: Any) -> float:
    return float(value) if value is not None else math.nan


def add_human_columns(table: Table, analysis: dict[str, Any]) -> Table:
    rows = analysis["system_win_rates"]
    questions = list(dict.fromkeys(r["question"] for r in rows))
    columns = list(table.columns)
    grid = [list(r) for r in table.cells]
    for question in questions:
        by_system = {r["system"]: r for r in rows if r["question"] == question}
        columns.append(Column(f"human_{question}", f"Human {question} win %", True, 1))
        for label, row in zip(table.row_labels, grid, strict=True):
            r = by_system.get(label)
            row.append(Cell() if r is None or r["value"] is None else
                       Cell(100 * _num(r["value"]), 100 * _num(r["low"]), 100 * _num(r["high"]), "ok"))
    return replace(table, columns=tuple(columns), cells=tuple(tuple(r) for r in grid))


def _pct(r: dict[str, Any]) -> str:
    if r["value"] is None:
        return "n/a"
    text = f"{100 * r['value']:.1f}%"
    return text + (f" [{100 * r['low']:.1f}, {100 * r['high']:.1f}]" if r["low"] is not None else "")


def html(analysis: dict[str, Any]) -> str:
    e = escape
    att = analysis["attention"]
    head = "".join(f"<th>{h}</th>" for h in ("question", "system", "vs", "win rate [95% CI]", "n"))
    body = "".join(f"<tr><td>{e(r['question'])}</td><td>{e(r['system'])}</td><td>{e(r['opponent'])}</td>"
                   f"<td>{e(_pct(r))}</td><td>{r['n']}</td></tr>" for r in analysis["win_rates"])
    return (f'<section id="human-study"><h2>Human side-by-side study</h2>'
            f"<p>{analysis['judgments']} judgments; ties {e(analysis['ties'])}; {e(analysis['interval'])}. "
            f"{e(att['rule'])}: {att['excluded']} of {att['raters']} raters excluded.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>")


def insert_html_section(page: str, section: str) -> str:
    """Put ``section`` just before the page's closing body tag."""
    at = page.rfind("</body>")
    return page[:at] + section + page[at:] if at >= 0 else page + section


@dataclass(frozen=True)
class HumanGateRow:
    question: str
    system: str
    opponent: str
    minimum: float
    value: float
    low: float
    high: float
    failed: bool


def parse_gate(text: str) -> tuple[str, str, str, float]:
    parts = text.rsplit(":", 3)
    try:
        if len(parts) != 4:
            raise ValueError
        return parts[0], parts[1], parts[2], float(parts[3])
    except ValueError:
        raise ConfigError(f"--human-gate {text!r}: expected QUESTION:SYSTEM:OPPONENT:MIN, "
                          "e.g. realism:trecs:sd:0.5") from None


def human_gate(analysis: dict[str, Any], specs: list[str]) -> list[HumanGateRow]:
    rows = []
    for text in specs:
        question, system, opponent, minimum = parse_gate(text)
        found = None
        for r in analysis["win_rates"]:
            if r["question"] != question:
                continue
            if (r["system"], r["opponent"]) == (system, opponent):
                found = (_num(r["value"]), _num(r["low"]), _num(r["high"]))
            elif (r["system"], r["opponent"]) == (opponent, system):
                found = (1 - _num(r["value"]), 1 - _num(r["high"]), 1 - _num(r["low"]))
        if found is None:
            raise ConfigError(f"--human-gate {text!r}: the study has no {question!r} win rate of "
                              f"{system!r} against {opponent!r}")
        rows.append(HumanGateRow(question, system, opponent, minimum, *found, failed=found[2] < minimum))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_gate(rows: list[HumanGateRow]) -> str:
    lines = ["", "Human win-rate gate (fails when the whole 95 % interval lies below the minimum):", "",
             "| question | system | vs | win rate [95% CI] | minimum | verdict |",
             "|---|---|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {_cell(r.question)} | {_cell(r.system)} | {_cell(r.opponent)} | "
                     f"{100 * r.value:.1f}% [{100 * r.low:.1f}, {100 * r.high:.1f}] | "
                     f"{100 * r.minimum:.1f}% | {'FAIL' if r.failed else 'pass'} |")
    return "\n".join(lines) + "\n"

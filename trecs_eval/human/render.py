"""The analysis as Markdown: what ``human analyze`` prints and writes to ``analysis.md``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _ci(row: dict[str, Any], pct: bool = True) -> str:
    scale, unit = (100.0, "%") if pct else (1.0, "")
    if row["value"] is None or not math.isfinite(row["value"]):
        return "n/a"
    text = f"{row['value'] * scale:.1f}{unit}"
    if row.get("low") is not None and math.isfinite(row["low"]):
        text += f" [{row['low'] * scale:.1f}, {row['high'] * scale:.1f}]"
    return text


def _cell(text: object) -> str:
    # System names are the user's: keep a "|" or a newline in one from breaking the table.
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    align = ["---" if k < 2 else "---:" for k in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _strength(r: dict[str, Any]) -> str:
    return f"{r['theta']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]"


def _rank(r: dict[str, Any]) -> str:
    return f"{r['rank']} [{r['rank_low']}–{r['rank_high']}]"


def render_markdown(analysis: dict[str, Any]) -> str:
    a = analysis["attention"]
    out = [f"# Human study ({analysis['judgments']} judgments, study {analysis['study_hash'][:12]})", "",
           f"Attention checks: {a['rule']}. Raters: {a['raters']}, checked {a['checked']}, unchecked "
           f"{a['unchecked']}, excluded {a['excluded']}; {a['passed_answers']}/{a['answers']} check "
           "answers passed.", "", f"Win rates: ties {analysis['ties']}; {analysis['interval']}.", ""]
    out += _table(["question", "system", "vs", "win rate [95% CI]", "wins", "ties", "losses", "n", "items",
                   "raters"],
                  [[r["question"], r["system"], r["opponent"], _ci(r), r["wins"], r["ties"], r["losses"],
                    r["n"], r["n_items"], r["n_raters"]] for r in analysis["win_rates"]])
    if analysis["bradley_terry"]:
        out += ["", "Bradley–Terry–Davidson log-strengths (mean 0), two-way bootstrap 95 % interval "
                    f"({analysis['bootstrap']} resamples):", ""]
        out += _table(["question", "system", "strength [95% CI]", "rank [range]", "tie ν"],
                      [[r["question"], r["system"], _strength(r), _rank(r), f"{r['tie_nu']:.2f}"]
                       for r in analysis["bradley_terry"]])
    consistency = {r["question"]: r for r in analysis["consistency"]}
    rows = []
    for r in analysis["krippendorff_alpha"]:
        c = consistency[r["question"]]
        alpha = f"{r['alpha']:.3f}" if math.isfinite(r["alpha"]) else "n/a"
        rows.append([r["question"], f"{alpha} (n={r['n']})", f"{_ci(c)} (n={c['n']})"])
    out += ["", "Agreement:", ""]
    out += _table(["question", "Krippendorff's α (nominal)", "repeat consistency [95% Wilson]"], rows)
    if analysis["metric_agreement"]:
        out += ["", "Metric–human agreement: share of non-tied human judgments whose winner the metric "
                    "also prefers (a metric tie counts 1/2), two-way clustered 95 % CI:", ""]
        out += _table(["metric", "question", "agreement [95% CI]", "n"],
                      [[r["metric"], r["question"], _ci(r), r["n"]] for r in analysis["metric_agreement"]])
    return "\n".join(out) + "\n"

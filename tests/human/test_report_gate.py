"""The human section of `report` and the human win-rate gate of `compare`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.human.conftest import HOSTILE_SYSTEM, SMALL_SPEC
from tests.report_fixtures import make_run_dir
from trecs_eval.cli import main
from trecs_eval.human.plan import plan_study
from trecs_eval.human.simulate import simulate_answers
from trecs_eval.human.store import open_store, record

THETA = {"trecs": 1.5, "sd": 0.0, HOSTILE_SYSTEM: -1.5}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    run = make_run_dir(root / "run", n_items=12, systems=("trecs", "sd", HOSTILE_SYSTEM, "real", "noise"))
    spec = replace(SMALL_SPEC, systems=("trecs", "sd", HOSTILE_SYSTEM), n_items=12, judgments_per_pair=5)
    study = plan_study(run, root / "study", spec)
    db = open_store(study)
    record(db, simulate_answers(study, THETA, seed=1))
    db.close()
    assert main(["-q", "human", "analyze", str(study.root), "--bootstrap", "20"]) == 0
    return run, study


def test_report_gets_human_columns_beside_fid(analysed, tmp_path, capsys):
    run, study = analysed
    out = tmp_path / "table.md"
    assert main(["report", str(run), "--human", str(study.root), "--out", str(out)]) == 0
    text = out.read_text()
    header = next(line for line in text.splitlines() if "FID" in line)
    for q in study.question_ids:
        assert f"Human {q} win %" in header
    analysis = json.loads((study.root / "analysis.json").read_text())
    trecs = next(r for r in analysis["system_win_rates"]
                 if (r["system"], r["question"]) == ("trecs", "realism"))
    row = next(line for line in text.splitlines() if line.startswith("| trecs"))
    assert f"{100 * trecs['value']:.1f}" in row
    real_row = next(line for line in text.splitlines() if line.startswith("| real"))
    assert "n/a" in real_row, "a system the study did not judge has no human number"
    assert main(["report", str(run), "--human", str(study.root), "--format", "tex", "--out", "-"]) == 0
    assert "Human realism win" in capsys.readouterr().out


def test_html_report_has_an_escaped_human_section(analysed, tmp_path):
    run, study = analysed
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--human", str(study.root), "--format", "html", "--out", str(out)]) == 0
    page = out.read_text()
    section = page[page.index('<section id="human-study">'):]
    assert HOSTILE_SYSTEM not in section and "&lt;img src=x onerror=alert(1)&gt;" in section


@pytest.mark.parametrize(("gate", "code"), [("realism:trecs:sd:0.5", 0), ("realism:sd:trecs:0.5", 1),
                                            ("alignment:sd:trecs:0.1", 0)])
def test_compare_gates_on_a_human_win_rate(analysed, gate, code, capsys):
    run, study = analysed
    argv = ["-q", "compare", str(run), str(run), "--metrics", "clip_score", "--human", str(study.root)]
    assert main([*argv, "--human-gate", gate]) == code
    out = capsys.readouterr().out
    assert "Human win-rate gate" in out and ("FAIL" in out) == (code == 1)


def test_bad_gate_and_stale_analysis_exit_2(analysed, tmp_path, capsys):
    run, study = analysed
    compare = ["-q", "compare", str(run), str(run), "--metrics", "clip_score"]
    assert main([*compare, "--human", str(study.root), "--human-gate", "realism:x:y:0.5"]) == 2
    assert main([*compare, "--human-gate", "realism:trecs:sd:0.5"]) == 2
    assert main(["report", str(run), "--human", str(tmp_path)]) == 2
    assert "not a study folder" in capsys.readouterr().err

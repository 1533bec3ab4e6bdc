"""Crowd export and import: the files, and the importer's answers to bad result files."""

from __future__ import annotations

import csv
import html
from pathlib import Path

import pytest

from trecs_eval.cli import main
from trecs_eval.human.analyze import analyze
from trecs_eval.human.crowd import export_study, import_results
from trecs_eval.human.simulate import simulate_answers
from trecs_eval.human.store import judgments_frame

THETA = {"trecs": 1.0, "sd": 0.0, "gligen": -0.5}


def _mturk_csv(study, path: Path, answers, mutate=None) -> Path:
    by_task: dict[str, dict[str, str]] = {}
    for a in answers:
        row = by_task.setdefault(a.task, {"HITId": f"H{a.task}", "WorkerId": f"W{a.rater}",
                                          "WorkTimeInSeconds": "12", "Input.task_id": a.task})
        row[f"Answer.{a.question}"] = a.choice
    rows = list(by_task.values())
    if mutate:
        rows = mutate(rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_export_writes_tasks_and_template_without_system_names(small_study, tmp_path):
    out = tmp_path / "export"
    export_study(small_study, out, "https://example.org/study")
    rows = list(csv.DictReader((out / "tasks.csv").open(encoding="utf-8")))
    assert [r["task_id"] for r in rows] == [t.task for t in small_study.tasks]
    first = small_study.tasks[0]
    left = small_study.items[first.item]["images"][first.left]
    assert rows[0]["left_image"] == "https://example.org/study/" + left
    assert rows[0]["narrative_html"] == html.escape(small_study.items[first.item]["narrative"])
    template = (out / "template.html").read_text()
    for column in ("${task_id}", "${left_image}", "${right_image}", "${narrative_html}", "${trace}"):
        assert column in template
    for q in small_study.questions:
        assert html.escape(q["text"]) in template
    for system in ("trecs", "gligen", "noise"):
        assert system not in (out / "tasks.csv").read_text() + template, "raters must judge blind"
    assert "externalSubmit" not in template
    export_study(small_study, tmp_path / "mturk", "https://example.org/study", "mturk")
    mturk = (tmp_path / "mturk" / "template.html").read_text()
    assert 'action="https://www.mturk.com/mturk/externalSubmit"' in mturk and 'name="assignmentId"' in mturk
    embedded = tmp_path / "embedded"
    export_study(small_study, embedded, None)
    assert "data:image/png;base64," in (embedded / "tasks.csv").read_text()


def test_export_refuses_to_overwrite_a_users_file(small_study, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "tasks.csv").write_text("my own file")
    argv = ["human", "export", str(small_study.root), "--base-url", "https://x.org", "--out", str(out)]
    assert main(argv) == 2
    assert (out / "tasks.csv").read_text() == "my own file"


def test_mturk_import_round_trip_and_idempotent(small_study, tmp_path):
    answers = simulate_answers(small_study, THETA, seed=1)
    path = _mturk_csv(small_study, tmp_path / "batch.csv", answers)
    assert import_results(small_study, path) == (len(answers), 0)
    assert import_results(small_study, path) == (0, len(answers))  # the same file again changes nothing
    frame = judgments_frame(small_study)
    assert len(frame) == len(answers)
    got = {(r.task, r.question): r.choice for r in frame.itertuples()}
    assert got == {(a.task, a.question): a.choice for a in answers}
    assert set(frame["rater"]) == {f"mturk:W{r}" for r in small_study.raters}
    result = analyze(small_study, n_boot=0)
    assert result["attention"]["raters"] == len(small_study.raters)
    assert all(r["n"] > 0 for r in result["consistency"]), "repeats pair up by worker"


@pytest.mark.parametrize(("mutate", "line", "field", "message"), [
    (lambda rows: [*rows[:3], dict(rows[3], **{"Input.task_id": "r999-0001"}), *rows[4:]], 5, "Input.task_id",
     "unknown task"),
    (lambda rows: [*rows[:2], rows[0], *rows[2:]], 4, "Input.task_id", "duplicate answer"),
    (lambda rows: [{k: v for k, v in r.items() if k != "Answer.alignment"} for r in rows], 1,
     "Answer.alignment", "missing column"),
    (lambda rows: [*rows[:1], dict(rows[1], **{"Answer.realism": "<script>x</script>"}), *rows[2:]], 3,
     "Answer.realism", "is not one of"),
    (lambda rows: [*rows[:1], dict(rows[1], WorkTimeInSeconds="-3"), *rows[2:]], 3, "WorkTimeInSeconds",
     "seconds"),
])
def test_bad_result_files_exit_2_naming_file_line_field(small_study, tmp_path, capsys, mutate, line, field,
                                                       message):
    path = _mturk_csv(small_study, tmp_path / "bad.csv", simulate_answers(small_study, THETA, seed=2), mutate)
    assert main(["human", "import", str(small_study.root), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{path}:{line}: field '{field}'" in err and message in err
    assert judgments_frame(small_study).empty, "a bad file records nothing"


def test_conflicting_reimport_is_refused(small_study, tmp_path, capsys):
    answers = simulate_answers(small_study, THETA, seed=3)
    first = _mturk_csv(small_study, tmp_path / "a.csv", answers)
    import_results(small_study, first)
    flipped = _mturk_csv(small_study, tmp_path / "b.csv", answers, lambda rows: [
        dict(r, **{"Answer.realism": {"left": "right", "right": "left", "tie": "left"}[r["Answer.realism"]]})
        for r in rows])
    assert main(["human", "import", str(small_study.root), str(flipped)]) == 2
    assert "already holds a different answer" in capsys.readouterr().err
    assert len(judgments_frame(small_study)) == len(answers)


def test_plain_csv_import(small_study, tmp_path):
    task = small_study.tasks[0]
    path = tmp_path / "prolific.csv"
    path.write_text("task_id,worker_id,realism,alignment,trace,seconds\n"
                    f"{task.task},P1,LEFT,tie,right,7.5\n", encoding="utf-8")
    assert import_results(small_study, path) == (3, 0)
    frame = judgments_frame(small_study)
    assert set(frame["choice"]) == {"left", "tie", "right"} and set(frame["rater"]) == {"crowd:P1"}
    assert frame["seconds"].tolist() == [7.5] * 3

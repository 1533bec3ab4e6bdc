"""Export a study to a crowd platform and import the platform's results.

Export writes ``tasks.csv`` (one row per planned page: the task id, the narrative, HTML-escaped
for the template, the two image URLs, the trace) and ``template.html``: one self-contained page
(inline CSS and script, no outside resource except the images) with ``${column}`` placeholders,
the syntax of MTurk's HIT layouts. Images are referenced as ``BASE_URL/images/<sha256>.png``
(upload the study's ``images/`` folder there) or embedded as data URIs. System names are never
exported: raters judge blind.

Import reads the platform's result CSV: MTurk's batch results (``Input.task_id``,
``Answer.<question>``, ``WorkerId``, ``WorkTimeInSeconds``) or a plain CSV (``task_id``,
``worker_id``, one column per question, optional ``seconds``), e.g. from Prolific. The whole file
is checked before anything is written; the first problem is reported with file, line and field
(exit 2). The rater of an imported judgment is ``<platform>:<worker id>``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path

from trecs_eval.atomic import ensure_dir, write_text
from trecs_eval.errors import ConfigError, InputError
from trecs_eval.human.store import Answer, existing, open_store, record
from trecs_eval.human.study import CHOICES, Study

FORMATS = ("mturk", "prolific", "csv")
EXPORT_FILES = ("tasks.csv", "template.html")
TASK_COLUMNS = ("task_id", "narrative", "narrative_html", "left_image", "right_image", "trace")


def _image_ref(study: Study, relative: str, base_url: str | None) -> str:
    if base_url is None:
        data = base64.b64encode((study.root / relative).read_bytes()).decode("ascii")
        kind = "jpeg" if relative.endswith((".jpg", ".jpeg")) else relative.rsplit(".", 1)[-1]
        return f"data:image/{kind};base64,{data}"
    return f"{base_url.rstrip('/')}/{relative}"


def tasks_csv(study: Study, base_url: str | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TASK_COLUMNS)
    for task in study.tasks:
        item = study.items[task.item]
        writer.writerow([task.task, item["narrative"], html.escape(item["narrative"]),
                         _image_ref(study, item["images"][task.left], base_url),
                         _image_ref(study, item["images"][task.right], base_url),
                         json.dumps(item["trace"], separators=(",", ":"))])
    return buffer.getvalue()


def template_html(study: Study, platform: str = "csv") -> str:
    from trecs_eval.human.page import crowd_template

    return crowd_template(study, platform)


def export_study(study: Study, out: Path, base_url: str | None, platform: str = "csv") -> list[Path]:
    """Write tasks.csv and template.html into ``out``; refuses to replace files it did not write."""
    if base_url is not None and not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"--base-url must start with https:// or http://, got {base_url!r}")
    ensure_dir(out)
    marker = out / ".trecs-eval-export"
    for name in EXPORT_FILES:
        if (out / name).exists() and not marker.exists():
            raise ConfigError(f"{out / name} exists and was not written by an export; nothing was written")
    write_text(marker, study.digest + "\n")
    return [write_text(out / "tasks.csv", tasks_csv(study, base_url)),
            write_text(out / "template.html", template_html(study, platform))]


def _columns(study: Study, header: list[str]) -> tuple[str, dict[str, str], str, str | None]:
    """(platform, question -> column, task column, seconds column) from the header."""
    if "Input.task_id" in header:
        return ("mturk", {q: f"Answer.{q}" for q in study.question_ids}, "Input.task_id", "WorkTimeInSeconds")
    return ("crowd", {q: q for q in study.question_ids}, "task_id", "seconds")


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason})", path=str(path)) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    rows = []
    for row in reader:
        if None in row:
            raise InputError("more cells than header columns", path=str(path), line=reader.line_num)
        rows.append((reader.line_num, row))
    return header, rows


def parse_results(study: Study, path: Path) -> list[Answer]:
    """Every answer of the result CSV, validated against the study (InputError on the first problem)."""
    header, rows = _read_rows(path)
    platform, question_cols, task_col, seconds_col = _columns(study, header)
    worker_col = "WorkerId" if platform == "mturk" else "worker_id"
    for column in (task_col, worker_col, *question_cols.values()):
        if column not in header:
            raise InputError(f"missing column (the header has: {', '.join(header) or 'nothing'})",
                             path=str(path), line=1, field=column)
    tasks, seen, answers = study.task_map(), {}, []
    for line, row in rows:
        task_id, worker = row[task_col].strip(), row[worker_col].strip()
        if task_id not in tasks:
            raise InputError(f"unknown task {task_id!r}: not in this study", path=str(path), line=line,
                             field=task_col)
        if task_id in seen:
            raise InputError(f"duplicate answer for task {task_id!r} (first on line {seen[task_id]})",
                             path=str(path), line=line, field=task_col)
        seen[task_id] = line
        if not worker:
            raise InputError("empty worker id", path=str(path), line=line, field=worker_col)
        seconds = _seconds(row.get(seconds_col or "", ""), path, line, seconds_col)
        prefix = "mturk" if platform == "mturk" else "crowd"
        for question, column in question_cols.items():
            choice = row[column].strip().lower()
            if choice not in CHOICES:
                raise InputError(f"answer {row[column]!r} is not one of {', '.join(CHOICES)}", path=str(path),
                                 line=line, field=column)
            answers.append(Answer(task_id, question, choice, f"{prefix}:{worker}", f"import:{path.name}",
                                  seconds))
    return answers


def _seconds(text: str | None, path: Path, line: int, column: str | None) -> float | None:
    if not text or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"not a number of seconds: {text!r}", path=str(path), line=line, field=column)
    return value


def import_results(study: Study, path: Path) -> tuple[int, int]:
    """Record the file's answers; returns (new, already recorded). A task already answered
    differently, by the server or an earlier import, is an error and nothing is written."""
    answers = parse_results(study, path)
    db = open_store(study)
    try:
        stored = existing(db)
        lines = {}
        _, rows = _read_rows(path)
        for line, row in rows:
            lines[(row.get("Input.task_id") or row.get("task_id") or "").strip()] = line
        for a in answers:
            old = stored.get((a.task, a.question))
            if old is not None and old != (a.choice, a.rater):
                raise InputError(f"task {a.task!r} already holds a different answer for {a.question!r} "
                                 f"({old[0]} by {old[1]}); nothing was imported", path=str(path),
                                 line=lines.get(a.task), field=a.question)
        new, _ = record(db, answers)
    finally:
        db.close()
    return new, len(answers) - new

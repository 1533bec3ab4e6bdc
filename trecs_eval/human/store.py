"""Judgments in SQLite (WAL): one row per (task, question), written and committed before the
server answers, so a judgment the rater saw acknowledged survives ``kill -9``.

Idempotence: the first answer to a (task, question) stands. Re-sending the same answer (a
double click, a replayed POST, a re-imported CSV) changes nothing; a *different* answer to an
answered task is reported as a conflict and also changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from trecs_eval.errors import TrecsEvalError
from trecs_eval.human.study import DB_FILE, Study

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgments (
    task TEXT NOT NULL, question TEXT NOT NULL, choice TEXT NOT NULL, rater TEXT NOT NULL,
    source TEXT NOT NULL, seconds REAL, submitted_at TEXT NOT NULL, PRIMARY KEY (task, question));
"""
BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Answer:
    task: str
    question: str
    choice: str
    rater: str
    source: str = "serve"
    seconds: float | None = None


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed judgment is on disk, not only in the page cache
    db.executescript(_SCHEMA)
    return db


def open_store(study: Study) -> sqlite3.Connection:
    """A connection bound to this study: the database records the study hash on first use and
    refuses a study whose plan changed since."""
    db = connect(study.db_path)
    row = db.execute("SELECT value FROM meta WHERE key = 'study_hash'").fetchone()
    if row is None:
        db.execute("INSERT OR IGNORE INTO meta VALUES ('study_hash', ?)", (study.digest,))
    elif row[0] != study.digest:
        db.close()
        raise TrecsEvalError(f"{study.db_path}: the judgments belong to a study with hash {row[0][:12]}, but "
                             f"study.json now hashes to {study.digest[:12]}; a study is frozen once judged")
    return db


def count_judgments(root: Path) -> int:
    path = Path(root) / DB_FILE
    if not path.is_file():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        return int(db.execute("SELECT count(*) FROM judgments").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def record(db: sqlite3.Connection, answers: Sequence[Answer]) -> tuple[int, int]:
    """Insert ``answers`` in one transaction; returns (new, conflicting). Identical repeats are neither."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    new = conflicts = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for a in answers:
            cur = db.execute("INSERT OR IGNORE INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (a.task, a.question, a.choice, a.rater, a.source, a.seconds, now))
            if cur.rowcount:
                new += 1
                continue
            old = db.execute("SELECT choice, rater FROM judgments WHERE task = ? AND question = ?",
                             (a.task, a.question)).fetchone()
            conflicts += int(tuple(old) != (a.choice, a.rater))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return new, conflicts


def answered_tasks(db: sqlite3.Connection, tasks: Iterable[str]) -> set[str]:
    wanted = set(tasks)
    return {row[0] for row in db.execute("SELECT DISTINCT task FROM judgments") if row[0] in wanted}


def existing(db: sqlite3.Connection) -> dict[tuple[str, str], tuple[str, str]]:
    """(task, question) -> (choice, rater) of every stored judgment."""
    rows = db.execute("SELECT task, question, choice, rater FROM judgments")
    return {(t, q): (c, r) for t, q, c, r in rows}


def judgments_frame(study: Study) -> pd.DataFrame:
    """Every judgment joined with its task: task, question, choice, rater, item, left, right, kind,
    repeat_of, winner (system name, or None for a tie), seconds, source."""
    columns = ["task", "question", "choice", "rater", "source", "seconds", "submitted_at"]
    if not study.db_path.is_file():
        frame = pd.DataFrame(columns=columns)
    else:
        db = open_store(study)
        try:
            frame = pd.DataFrame(db.execute(f"SELECT {', '.join(columns)} FROM judgments ORDER BY rowid")
                                 .fetchall(), columns=columns)
        finally:
            db.close()
    tasks = study.task_map()
    frame["planned_rater"] = [tasks[t].rater for t in frame["task"]]
    for field in ("item", "left", "right", "kind", "repeat_of"):
        frame[field] = [getattr(tasks[t], field) for t in frame["task"]]
    frame["winner"] = [tasks[t].winner(c) for t, c in zip(frame["task"], frame["choice"], strict=True)]
    return frame

"""The frozen study: its on-disk layout, the question wordings and a verified loader."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trecs_eval.errors import InputError, TrecsEvalError

STUDY_FORMAT = "trecs-eval/human-study"
STUDY_FILE, HASH_FILE, TOKENS_FILE, DB_FILE = "study.json", "study.hash", "raters.json", "judgments.sqlite"
IMAGES_DIR = "images"
# The exact wording a rater reads; a study records the text it used, so a later edit here
# cannot silently change what an old study asked.
QUESTIONS: dict[str, str] = {
    "realism": "Which image looks more like a real photograph?",
    "alignment": "Which image better matches the description?",
    "trace": "Which image places the described things where the trace points?",
}
TRACE_QUESTIONS = frozenset({"trace"})  # shown with the trace drawn over both images
CHOICES = ("left", "right", "tie")
KINDS = ("regular", "attention", "repeat")


@dataclass(frozen=True)
class Task:
    """One page a rater judges: one item, two systems (``left`` on the left), every question."""

    task: str
    rater: str
    item: str
    left: str
    right: str
    kind: str
    repeat_of: str | None = None

    def winner(self, choice: str) -> str | None:
        """The system a ``left``/``right`` choice names; ``None`` for a tie."""
        return {"left": self.left, "right": self.right}.get(choice)


@dataclass(frozen=True)
class Study:
    """A loaded, hash-verified study folder."""

    root: Path
    data: dict[str, Any]
    digest: str
    tasks: tuple[Task, ...]

    @property
    def systems(self) -> list[str]:
        return list(self.data["systems"])

    @property
    def questions(self) -> list[dict[str, Any]]:
        return list(self.data["questions"])

    @property
    def question_ids(self) -> list[str]:
        return [q["id"] for q in self.data["questions"]]

    @property
    def items(self) -> dict[str, Any]:
        return dict(self.data["items"])

    @property
    def raters(self) -> list[str]:
        return list(self.data["raters"])

    @property
    def attention(self) -> dict[str, Any]:
        return dict(self.data["attention"])

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILE

    def task_map(self) -> dict[str, Task]:
        return {t.task: t for t in self.tasks}

    def tasks_of(self, rater: str) -> list[Task]:
        return [t for t in self.tasks if t.rater == rater]

    def image_files(self) -> set[str]:
        """Every file name under ``images/`` the study may serve."""
        return {Path(p).name for item in self.data["items"].values() for p in item["images"].values()}


def canonical_bytes(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def study_digest(data: Any) -> str:
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def load_study(root: Path | str) -> Study:
    """Read ``root/study.json`` and check it against ``study.hash`` (a hand-edited study is refused)."""
    root = Path(root)
    path = root / STUDY_FILE
    if not path.is_file():
        raise TrecsEvalError(f"{root}: not a study folder (no {STUDY_FILE})",
                             hint="create one with `trecs-eval human plan RUN_DIR --out STUDY`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"not valid JSON ({err})", path=str(path)) from None
    if not isinstance(data, dict) or data.get("format") != STUDY_FORMAT:
        raise InputError(f"not a {STUDY_FORMAT} file", path=str(path), field="format")
    digest = study_digest(data)
    recorded = (root / HASH_FILE).read_text(encoding="utf-8").strip() if (root / HASH_FILE).is_file() else ""
    if recorded != digest:
        raise InputError(f"study.json does not match {HASH_FILE} (edited after planning?); a study is "
                         "frozen once planned", path=str(path))
    tasks = tuple(Task(**t) for t in data["tasks"])
    return Study(root, data, digest, tasks)


def read_tokens(study: Study) -> dict[str, str]:
    """token -> rater id."""
    path = study.root / TOKENS_FILE
    tokens = json.loads(path.read_text(encoding="utf-8"))
    return {token: rater for rater, token in tokens.items()}

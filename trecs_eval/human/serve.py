"""``human serve``: a small threaded HTTP server (standard library) that shows each rater their
planned pages and writes every judgment to SQLite before answering.

Routes: ``GET /r/<token>`` the rater's next page (or a thank-you page); ``POST /r/<token>/submit``
one page's answers (form-encoded, at most :data:`MAX_BODY` bytes: larger is refused with 413
unread); ``GET /images/<sha256>.<ext>`` only the images the study lists. Anything else is 404.
An unknown token, or a task that is not the token's, is 404; a malformed answer 400; a second,
*different* answer to an answered page 409 (the first stands); the same answer again is accepted
and changes nothing. Pages carry a strict Content-Security-Policy (scripts and styles only with
the page's nonce), ``Referrer-Policy: no-referrer`` (links hold tokens) and ``no-store``.
Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from trecs_eval.human.page import judgment_page, message_page
from trecs_eval.human.store import Answer, answered_tasks, open_store, record
from trecs_eval.human.study import CHOICES, Study, read_tokens

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # one page's answers are a few hundred bytes
MAX_FIELDS = 64  # a page sends the task, the seconds and one field per question
MAX_SECONDS = 24 * 3600.0
REQUEST_TIMEOUT_S = 30  # a client that stops sending mid-request frees its thread
_RATER_PATH = re.compile(r"^/r/([A-Za-z0-9_-]{8,64})(/submit)?/?$")
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, study: Study, host: str, port: int) -> None:
        self.study = study
        self.tokens = read_tokens(study)
        self.images = study.image_files()
        self.tasks = study.task_map()
        self.plan = {r: study.tasks_of(r) for r in study.raters}
        open_store(study).close()  # fail now, not on the first rater, if the database belongs elsewhere
        super().__init__((host, port), StudyHandler)


class StudyHandler(BaseHTTPRequestHandler):
    server: StudyServer
    timeout = REQUEST_TIMEOUT_S
    server_version = "trecs-eval-study"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        # The path holds the rater's token: log the route only.
        log.debug("%s %s", self.command, re.sub(r"/r/[^/]+", "/r/<token>", self.path))

    def _send(self, status: int, body: bytes, content_type: str, nonce: str | None = None,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        style = f"'nonce-{nonce}'" if nonce else "'none'"
        self.send_header("Content-Security-Policy", f"default-src 'none'; img-src 'self'; style-src {style}; "
                         f"script-src {style}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _message(self, status: int, title: str, text: str) -> None:
        self._send(status, message_page(title, text).encode("utf-8"), "text/html; charset=utf-8")

    def _rater(self) -> tuple[str, str, bool] | None:
        match = _RATER_PATH.match(self.path.split("?", 1)[0])
        if not match or match.group(1) not in self.server.tokens:
            self._message(404, "Unknown link", "This link is not part of the study.")
            return None
        return match.group(1), self.server.tokens[match.group(1)], bool(match.group(2))

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/favicon.ico":  # browsers ask on their own; no content rather than a logged 404
            self._send(204, b"", "text/plain")
            return
        if path.startswith("/images/"):
            self._image(path[len("/images/"):])
            return
        found = self._rater()
        if found is None:
            return
        token, rater, submit = found
        if submit:
            self._message(405, "Use the form", "Answers are sent with the page's Submit button.")
            return
        self._next_page(token, rater)

    def _image(self, name: str) -> None:
        if name not in self.server.images:
            self._message(404, "Not found", "No such image in this study.")
            return
        data = (self.server.study.root / "images" / name).read_bytes()
        self._send(200, data, _IMAGE_TYPES.get("." + name.rsplit(".", 1)[-1], "application/octet-stream"))

    def _next_page(self, token: str, rater: str) -> None:
        plan = self.server.plan[rater]
        db = open_store(self.server.study)
        try:
            done = answered_tasks(db, (t.task for t in plan))
        finally:
            db.close()
        pending = [t for t in plan if t.task not in done]
        if not pending:
            self._message(200, "Thank you", f"All {len(plan)} judgments are recorded. Thank you!")
            return
        nonce = secrets.token_urlsafe(16)
        page = judgment_page(self.server.study, pending[0], token, len(done) + 1, len(plan), nonce)
        self._send(200, page.encode("utf-8"), "text/html; charset=utf-8", nonce=nonce)

    def do_POST(self) -> None:
        found = self._rater()
        if found is None:
            return
        token, rater, submit = found
        length = self.headers.get("Content-Length")
        if not submit:
            self._message(405, "Not here", "Answers go to the page's form address.")
            return
        if length is None or not length.isdigit():
            self._message(411, "Length required", "The request had no Content-Length.")
            return
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is never read
            self._message(413, "Too large", f"A page's answers are at most {MAX_BODY} bytes.")
            return
        body = self.rfile.read(int(length)).decode("utf-8", errors="replace")
        try:
            form = parse_qs(body, max_num_fields=MAX_FIELDS)
        except ValueError:  # more fields than any page has
            self._message(400, "Malformed answer", "Too many form fields.")
            return
        self._submit(token, rater, form)

    def _answers(self, rater: str, form: dict[str, list[str]]) -> list[Answer] | str:
        task_id = (form.get("task") or [""])[0]
        task = self.server.tasks.get(task_id)
        if task is None or task.rater != rater:
            return "unknown task"
        seconds = _seconds((form.get("seconds") or [""])[0])
        answers = []
        for question in self.server.study.question_ids:
            choice = (form.get(f"q_{question}") or [""])[0]
            if choice not in CHOICES:
                return f"question {question!r} needs one of {', '.join(CHOICES)}"
            answers.append(Answer(task_id, question, choice, rater, "serve", seconds))
        return answers

    def _submit(self, token: str, rater: str, form: dict[str, list[str]]) -> None:
        answers = self._answers(rater, form)
        if answers == "unknown task":
            self._message(404, "Unknown task", "That page is not part of this link's study.")
            return
        if isinstance(answers, str):
            self._message(400, "Incomplete answer", answers)
            return
        db = open_store(self.server.study)
        try:
            _, conflicts = record(db, answers)
        finally:
            db.close()
        if conflicts:
            self._message(409, "Already answered", "This page was answered before; the first answer stands.")
            return
        self._send(303, b"", "text/plain", extra={"Location": f"/r/{token}"})


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 <= value <= MAX_SECONDS else None


def start_server(study: Study, host: str = "127.0.0.1",
                 port: int = 0) -> tuple[StudyServer, threading.Thread]:
    """Serve in a background thread (tests, notebooks); ``port=0`` picks a free port."""
    server = StudyServer(study, host, port)
    thread = threading.Thread(target=server.serve_forever, name="study-server", daemon=True)
    thread.start()
    return server, thread


def rater_links(study: Study, base: str) -> dict[str, str]:
    return {rater: f"{base.rstrip('/')}/r/{token}" for token, rater in read_tokens(study).items()}

"""A tiny loopback HTTP client for the study server tests (standard library only)."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlencode

TASK_FIELD = re.compile(r'name="task" value="([^"]+)"')


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def submit(port: int, token: str, task: str, choices: dict[str, str], seconds: str = "3.5") -> int:
    form = {"task": task, "seconds": seconds, **{f"q_{q}": c for q, c in choices.items()}}
    status, _, _ = request(port, "POST", f"/r/{token}/submit", urlencode(form).encode(),
                           {"Content-Type": "application/x-www-form-urlencoded"})
    return status


def current_task(port: int, token: str) -> str | None:
    status, _, page = request(port, "GET", f"/r/{token}")
    assert status == 200, status
    match = TASK_FIELD.search(page)
    return match.group(1) if match else None


def complete(port: int, token: str, answers: dict[str, dict[str, str]], limit: int) -> list[str]:
    """Answer pages in the order the server shows them (at most ``limit``); returns the task ids."""
    done = []
    for _ in range(limit):
        task = current_task(port, token)
        if task is None:
            return done
        assert submit(port, token, task, answers[task]) == 303
        done.append(task)
    assert current_task(port, token) is None, "the server kept showing pages past the plan"
    return done

"""What a downloaded file must look like before it is kept: its content type and its first bytes.

A mirror that answers 200 with an HTML error page, or a proxy that serves a login page, must not
leave that page under the name of a data file. The kind of a file follows from its name:

========  ==========================================================================
zip       ``PK\\x03\\x04`` (or the empty-archive ``PK\\x05\\x06``)
tar       ``ustar`` at byte 257 (POSIX and GNU tars)
jsonl     UTF-8 whose first line is a JSON object
text      UTF-8 without NUL bytes that does not start like HTML
jpeg      ``FF D8 FF``
========  ==========================================================================

A ``Content-Type`` of ``text/html`` is refused for every kind (before a byte is written), any
``text/*`` for the binary kinds; the first bytes are checked once the transfer is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

KINDS = {".zip": "zip", ".tar": "tar", ".jsonl": "jsonl", ".txt": "text", ".jpg": "jpeg", ".jpeg": "jpeg"}
BINARY_KINDS = frozenset({"zip", "tar", "jpeg"})
HTML_TYPES = ("text/html", "application/xhtml")
HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml")
SNIFF_BYTES = 1 << 16  # enough for the first JSONL line of a Localized Narratives file (one narrative)


def content_kind(name: str) -> str | None:
    """``"zip"``, ``"tar"``, ``"jsonl"``, ``"text"``, ``"jpeg"`` by the file name; None: not checked."""
    return KINDS.get(Path(name).suffix.lower())


def content_type_problem(content_type: str | None, kind: str | None) -> str | None:
    """Why a ``Content-Type`` cannot be a ``kind`` file (HTML for any, ``text/*`` for binary kinds)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime.startswith(HTML_TYPES) or (kind in BINARY_KINDS and mime.startswith("text/")):
        return f"served as {mime!r} (an error or login page?)"
    return None


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip().lower().startswith(HTML_STARTS)


def _check_text(head: bytes, kind: str) -> str | None:
    if b"\0" in head:
        return "binary data (NUL bytes)"
    if _looks_like_html(head):
        return "an HTML page"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # a multi-byte character cut by the sniff window is fine
            return f"not UTF-8 text (byte {err.start})"
        text = head[:err.start].decode("utf-8")
    if kind == "jsonl":
        first = text.lstrip().split("\n", 1)[0]
        if not first.startswith("{"):
            return "not JSON lines (the first line is not a JSON object)"
        if len(head) < SNIFF_BYTES or "\n" in text.lstrip():
            try:
                json.loads(first)
            except ValueError:
                return "not JSON lines (the first line is not valid JSON)"
    return None


def problem(path: Path, kind: str | None) -> str | None:
    """Why ``path`` is not a ``kind`` file, or None when its first bytes fit."""
    if kind is None:
        return None
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        return "empty"
    if kind == "zip":
        zip_magic = (b"PK\x03\x04", b"PK\x05\x06")
        return None if head.startswith(zip_magic) else _binary_problem(head, "zip archive")
    if kind == "tar":
        return None if head[257:262] == b"ustar" else _binary_problem(head, "tar archive")
    if kind == "jpeg":
        return None if head.startswith(b"\xff\xd8\xff") else _binary_problem(head, "JPEG image")
    return _check_text(head, kind)


def _binary_problem(head: bytes, what: str) -> str:
    start = head[:24].decode("ascii", "replace").replace("\n", " ")
    return f"{'an HTML page' if _looks_like_html(head) else 'not a ' + what} (starts {start!r})"


"""HTTP transfer for :mod:`trecs_eval.data.download` and :mod:`trecs_eval.data.download_images`:
resumable ``.part`` files (HTTP ``Range``), retries, sha256, the ``manifest.json`` of a data root.

A leaf of the two: both import it, it imports neither (they imported each other before).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import re
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from trecs_eval.atomic import atomic_write, ensure_dir, write_error
from trecs_eval.data.download_verify import content_kind, content_type_problem, problem
from trecs_eval.errors import TrecsEvalError

log = logging.getLogger(__name__)

BASE_URL_ENV = "TRECS_EVAL_DOWNLOAD_BASE_URL"
MANIFEST_NAME = "manifest.json"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0


class DownloadError(TrecsEvalError):
    """A transfer failed or a file does not match its checksum."""


class NotFoundError(DownloadError):
    """The server answered 404 (an alternative remote path may exist)."""


class ConnectionLostError(DownloadError):
    """The connection broke mid-transfer; the bytes so far are in ``.part`` (resumable)."""


class ContentError(DownloadError):
    """A downloaded body is not the kind of file its name says (an error page, a login page)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would write outside the target folder or is a link or device."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, offset: int) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "trecs-eval"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # our .part is not a prefix the server knows: restart
            return None
        kind = NotFoundError if err.code == 404 else DownloadError
        raise kind(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"{url}: cannot connect ({getattr(err, 'reason', err)})",
                            hint=f"use --base-url or ${BASE_URL_ENV} to point at a mirror") from None
    except http.client.HTTPException as err:  # a garbled status line or headers
        raise DownloadError(f"{url}: not a valid HTTP answer ({type(err).__name__}: {err})") from None


def _int_header(url: str, response: Any, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise DownloadError(f"{url}: unreadable {name} {value!r}")
    return int(value)


def _body_span(url: str, response: Any, sha256: str | None) -> tuple[int, int | None]:
    """(offset of the body's first byte in the file, the file's full length or None).

    A 206 must say where its body starts (``Content-Range``) and agree with ``Content-Length``; a
    200 body starts at 0. A body with no length at all (neither header nor chunked framing) could
    be cut anywhere unnoticed: accepted only for a file whose sha256 is pinned.
    """
    length = _int_header(url, response, "Content-Length")
    if response.status == 206:
        rng = (response.headers.get("Content-Range") or "").strip()
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", rng)
        if match is None or int(match[2]) < int(match[1]):
            raise DownloadError(f"{url}: 206 answer with an unreadable Content-Range {rng!r}")
        first, last = int(match[1]), int(match[2])
        if length is not None and length != last - first + 1:
            raise DownloadError(f"{url}: Content-Range {rng!r} disagrees with Content-Length {length}")
        return first, int(match[3]) if match[3] != "*" else last + 1
    if response.status != 200:
        raise DownloadError(f"{url}: unexpected HTTP {response.status} {response.reason}")
    if length is None and not getattr(response, "chunked", False) and sha256 is None:
        raise DownloadError(f"{url}: the server sent no length; a cut transfer could not be told apart",
                            hint="use a mirror that sends Content-Length")
    return 0, length


def _part_size(part: Path) -> int:
    """Bytes already in ``part``; a ``.part`` that is a link, folder or fifo is refused, not used."""
    try:
        info = part.lstat()
    except FileNotFoundError:
        return 0
    if not stat.S_ISREG(info.st_mode):
        raise DownloadError(f"{part} is not a regular file (a symbolic link?); refused, nothing written "
                            "through it", hint="delete it and run the command again")
    return info.st_size


def _open_part(part: Path, append: bool) -> BinaryIO:
    """``part`` for writing, never through a symbolic link (``O_NOFOLLOW``)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(part, flags, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DownloadError(f"{part} is a symbolic link; refused, nothing written through it",
                                hint="delete it and run the command again") from None
        raise write_error(part, err) from None
    return os.fdopen(fd, "ab" if append else "wb")


def _answer(url: str, part: Path, kind: str | None, sha256: str | None) -> tuple[Any, int, int | None]:
    """The response to read, the offset its body starts at in ``part`` and the file's length.

    Resumes at the size of ``part``; a server that ignores the Range (200), answers 416, or sends
    a 206 starting anywhere but there restarts the file from byte 0 (nothing is appended).
    """
    offset = _part_size(part)
    response = _open(url, offset)
    if response is None:  # 416
        offset, response = 0, _open(url, 0)
    why = content_type_problem(response.headers.get("Content-Type"), kind)
    if why is not None:  # refused before a byte is written: a resumable .part stays as it was
        response.close()
        raise ContentError(f"{url}: {why}, not a {kind or 'data'} file; refused, nothing kept",
                           hint="check --base-url: a mirror must serve the files themselves")
    start, total = _body_span(url, response, sha256)
    if start not in (0, offset):
        response.close()
        log.warning("%s: asked for bytes from %d, the server sent from %d; starting over", url, offset, start)
        response, start = _open(url, 0), 0
        start, total = _body_span(url, response, sha256)
        if start != 0:
            raise DownloadError(f"{url}: a request for the whole file got a body starting at byte {start}")
    return response, start, total


def _transfer(url: str, part: Path, progress: bool, kind: str | None = None,
              sha256: str | None = None) -> None:
    """Append the rest of ``url`` to ``part`` (resuming at its size); raise on a cut connection."""
    response, start, total = _answer(url, part, kind, sha256)
    with response, _open_part(part, append=start > 0) as out, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, desc=part.name[:-5],
        disable=not progress, leave=False,
    ) as bar:
        received = start
        while True:
            try:
                block = response.read(CHUNK_BYTES)
            except (OSError, ValueError, http.client.HTTPException) as err:  # IncompleteRead, reset
                raise ConnectionLostError(f"{url}: connection lost after {received} bytes "
                                          f"({type(err).__name__})",
                                          hint="run the same command again to resume") from None
            if not block:
                break
            out.write(block)
            received += len(block)
            bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size > total:
        part.unlink()
        raise DownloadError(f"{url}: received {size} bytes for a {total}-byte file; "
                            "the partial file was removed")
    if total is not None and size != total:
        raise ConnectionLostError(f"{url}: connection closed after {size} of {total} bytes",
                                  hint="run the same command again to resume")


def read_manifest(root: Path) -> dict[str, Any]:
    """``ROOT/manifest.json``; one written by another tool (or damaged) is refused, never overwritten."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {"files": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DownloadError(f"{path}: not valid JSON ({getattr(err, 'msg', err)}); "
                            "delete it to start afresh") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        found = type(manifest).__name__ if not isinstance(manifest, dict) else "no 'files' object"
        raise DownloadError(f"{path}: not a trecs-eval download manifest ({found}); it is left as it is",
                            hint="pick another --root, or move that file away")
    for key, entry in files.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
                and isinstance(entry.get("sha256"), str)):
            raise DownloadError(f"{path}: entry {key!r} lacks an integer 'bytes' and a 'sha256'; "
                                "it is left as it is",
                                hint="delete that entry (the file is then downloaded again)")
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    with atomic_write(root / MANIFEST_NAME, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def download_to_part(
    url: str, dest: Path, *, sha256: str | None = None, retries: int = 3, progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Path, str]:
    """Download ``url`` to ``dest.part`` with resume and check it; returns (the part, its sha256).

    A cut connection is retried ``retries`` times (1 s, 2 s, 4 s apart), each time resuming
    from the bytes already in ``.part``. A body that is not the kind of file ``dest``'s name says
    (:mod:`.download_verify`) or that misses its pinned checksum is deleted and refused; ``dest``
    itself is never touched here.
    """
    ensure_dir(dest.parent)
    part = dest.with_name(dest.name + ".part")
    kind = content_kind(dest.name)
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, progress, kind, sha256)
            break
        except ConnectionLostError as err:
            if attempt == retries:
                raise
            log.warning("%s; resuming (attempt %d of %d)", err.message, attempt + 2, retries + 1)
            sleep(2.0 ** attempt)
    why = problem(part, kind)
    if why is not None:
        part.unlink()
        raise ContentError(f"{url}: the body is {why}, not a {kind} file; refused, nothing kept",
                           hint="check --base-url: a mirror must serve the files themselves")
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DownloadError(f"{url}: sha256 {digest} does not match the pinned {sha256}",
                            hint="the mirror may hold another version; the partial file was removed")
    return part, digest


def download_file(
    url: str, dest: Path, *, sha256: str | None = None, retries: int = 3, progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """:func:`download_to_part`, then the checked file replaces ``dest``; returns the sha256."""
    part, digest = download_to_part(url, dest, sha256=sha256, retries=retries, progress=progress, sleep=sleep)
    os.replace(part, dest)
    return digest

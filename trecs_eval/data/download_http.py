"""HTTP transfer for :mod:`trecs_eval.data.download` and :mod:`trecs_eval.data.download_images`:
resumable ``.part`` files (HTTP ``Range``), retries, sha256, the ``manifest.json`` of a data root.

A leaf of the two: both import it, it imports neither (they imported each other before).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from trecs_eval.atomic import atomic_write
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


def _transfer(url: str, part: Path, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (resuming at its size); raise on a cut connection."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset)
    if response is None:  # 416
        part.unlink()
        offset, response = 0, _open(url, 0)
    with response:
        if offset and response.status != 206:  # server ignored Range: start over
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5],
            disable=not progress, leave=False,
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK_BYTES)
                except (OSError, ValueError) as err:  # IncompleteRead, reset: keep what we have
                    raise ConnectionLostError(f"{url}: connection lost after {out.tell()} bytes ({err})",
                                        hint="run the same command again to resume") from None
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
        size = part.stat().st_size
        if total is not None and size != total:
            raise ConnectionLostError(f"{url}: connection closed after {size} of {total} bytes",
                                hint="run the same command again to resume")


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {"files": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TrecsEvalError(f"{path}: not valid JSON ({err.msg}); delete it to start afresh") from None


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    with atomic_write(root / MANIFEST_NAME, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def download_file(
    url: str, dest: Path, *, sha256: str | None = None, retries: int = 3, progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download ``url`` to ``dest`` via ``dest.part`` with resume; returns the sha256.

    A cut connection is retried ``retries`` times (1 s, 2 s, 4 s apart), each time resuming
    from the bytes already in ``.part``. A checksum mismatch deletes ``.part`` and raises.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, progress)
            break
        except ConnectionLostError as err:
            if attempt == retries:
                raise
            log.warning("%s; resuming (attempt %d of %d)", err.message, attempt + 2, retries + 1)
            sleep(2.0 ** attempt)
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DownloadError(f"{url}: sha256 {digest} does not match the pinned {sha256}",
                            hint="the mirror may hold another version; the partial file was removed")
    os.replace(part, dest)
    return digest

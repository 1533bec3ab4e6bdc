"""Download the public data the real benchmarks need (sources: :mod:`.download_sources`).

Every file goes to ``ROOT/<folder>/<name>`` through ``<name>.part``: an interrupted transfer is
resumed with an HTTP ``Range`` request (by the automatic retries, or by running the command
again). Each finished file's sha256 is checked against a pinned value where one is known and
is recorded in ``ROOT/manifest.json`` (url, bytes, sha256; unpinned files are pinned there on
first download). Zip archives are unpacked next to themselves; the TReCS images tar is unpacked
with the standard library's ``data`` extraction filter after every member was checked (no ``..``,
absolute path, symlink, hard link or device). ``--base-url`` (or ``$TRECS_EVAL_DOWNLOAD_BASE_URL``)
points at a mirror holding the same relative paths, e.g. for offline tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from trecs_eval.atomic import atomic_write
from trecs_eval.data.download_sources import SOURCES, RemoteFile, Source, get_source
from trecs_eval.errors import TrecsEvalError

__all__ = ["SOURCES", "RemoteFile", "Source", "download", "download_file", "get_source", "source_status"]

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


def _extract_zip(archive: Path, prefixes: tuple[str, ...], progress: bool) -> int:
    """Unpack members (under ``prefixes``; all when empty) next to the archive, refusing paths
    that would leave the folder. Returns the number of files written."""
    target = archive.parent.resolve()
    count = 0
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist()
                   if not prefixes or any(m.filename.startswith(p) for p in prefixes)]
        if prefixes and not any(not m.is_dir() for m in members):
            raise DownloadError(f"{archive}: no member under {', '.join(prefixes)} (first members: "
                                f"{', '.join(zf.namelist()[:3])})", hint="the archive's layout changed")
        for member in members:  # check all before writing any
            if not (target / member.filename).resolve().is_relative_to(target):
                raise UnsafeArchiveError(f"{archive}: member {member.filename!r} escapes the folder")
        for member in tqdm(members, desc=f"unzip {archive.name}", disable=not progress, leave=False):
            zf.extract(member, target)
            count += not member.is_dir()
    return count


def check_tar_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    """Refuse, before anything is written, every member that is a symlink, hard link or device,
    or whose path is absolute or climbs out with ``..`` (the ``data`` filter would refuse some of
    these mid-extraction; we want all-or-nothing and one clear message)."""
    for member in members:
        name = member.name
        kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk() else
                "a device or fifo" if member.isdev() else None)
        if kind is None and (name.startswith(("/", "\\")) or ".." in Path(name).parts):
            kind = "a path outside the target folder"
        if kind is None and not (member.isfile() or member.isdir()):
            kind = "not a regular file or folder"
        if kind is not None:
            raise UnsafeArchiveError(f"{archive}: member {name!r} is {kind}; refused (nothing was unpacked)",
                                     hint="the archive is not the released one; delete it and download again")


def _extract_tar(archive: Path, progress: bool) -> int:
    """Unpack a tar next to itself with the ``data`` filter after :func:`check_tar_members`."""
    target = archive.parent
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            check_tar_members(archive, members)
            for member in tqdm(members, desc=f"untar {archive.name}", disable=not progress, leave=False):
                tf.extract(member, target, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise DownloadError(f"{archive}: cannot unpack ({err})") from None
    return sum(m.isfile() for m in members)


def _extract(archive: Path, remote: RemoteFile, progress: bool) -> int:
    assert remote.extract is not None
    if archive.name.endswith(".tar"):
        return _extract_tar(archive, progress)
    return _extract_zip(archive, remote.extract, progress)


def _recorded(manifest: dict[str, Any], root: Path, source: Source, remote: RemoteFile) -> str | None:
    """The manifest key of a finished download of ``remote`` (any of its names), else None."""
    for candidate in remote.candidates:
        rel = f"{source.folder}/{Path(candidate).name}"
        entry = manifest["files"].get(rel)
        if entry and (root / rel).is_file() and (root / rel).stat().st_size == entry["bytes"]:
            return rel
    return None


def _fetch(base: str, root: Path, source: Source, remote: RemoteFile, retries: int,
           progress: bool) -> tuple[str, dict[str, Any]]:
    """Download the first of ``remote``'s candidate paths that exists; (manifest key, entry)."""
    for n, candidate in enumerate(remote.candidates):
        rel = f"{source.folder}/{Path(candidate).name}"
        url = f"{base}/{candidate}"
        try:
            digest = download_file(url, root / rel, sha256=remote.sha256, retries=retries, progress=progress)
        except NotFoundError:
            if n + 1 == len(remote.candidates):
                raise
            log.info("%s not found; trying %s", url, remote.candidates[n + 1])
            continue
        return rel, {"url": url, "bytes": (root / rel).stat().st_size, "sha256": digest,
                     "source": source.name, "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    raise AssertionError("unreachable")


def base_url_for(source: Source, base_url: str | None) -> str:
    """``base_url``, else ``$TRECS_EVAL_DOWNLOAD_BASE_URL``, else the source's official host."""
    return (base_url or os.environ.get(BASE_URL_ENV) or source.base_url).rstrip("/")


def download(
    name: str, root: str | os.PathLike[str], *, base_url: str | None = None, force: bool = False,
    retries: int = 3, progress: bool = True,
) -> list[Path]:
    """Download (and unpack) the named source under ``root``; returns the downloaded files.

    Files already recorded in the manifest with their size on disk are skipped unless ``force``.
    ``base_url`` (else ``$TRECS_EVAL_DOWNLOAD_BASE_URL``, else the official host) is joined
    with each file's remote path.
    """
    source = get_source(name)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = base_url_for(source, base_url)
    if source.per_image:
        from trecs_eval.data.download_images import download_images

        return download_images(source, root, base, retries=retries, progress=progress)
    manifest = read_manifest(root)
    done = []
    for remote in source.files:
        rel = None if force else _recorded(manifest, root, source, remote)
        if rel is not None:
            log.info("%s: already downloaded (sha256 %s)", rel, manifest["files"][rel]["sha256"][:12])
        else:
            rel, entry = _fetch(base, root, source, remote, retries, progress)
            manifest["files"][rel] = entry
            write_manifest(root, manifest)
        entry = manifest["files"][rel]
        if remote.extract is not None and not entry.get("extracted"):
            entry["extracted"] = _extract(root / rel, remote, progress)
            write_manifest(root, manifest)
        done.append(root / rel)
    return done


def source_status(root: str | os.PathLike[str], source: Source) -> str:
    """"present", "partial (k of n)" or "absent" for ``data download --list``."""
    root = Path(root)
    if source.per_image:
        from trecs_eval.data.download_images import image_status

        return image_status(source, root)
    manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() else {"files": {}}
    found = sum(_recorded(manifest, root, source, r) is not None for r in source.files)
    if found == len(source.files):
        return "present"
    return f"partial ({found} of {len(source.files)} files)" if found else "absent"

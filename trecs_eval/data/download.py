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

import logging
import os
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from trecs_eval.data.download_http import (  # noqa: F401  (re-exported: the public names of this module)
    BASE_URL_ENV,
    CHUNK_BYTES,
    MANIFEST_NAME,
    TIMEOUT_S,
    ConnectionLostError,
    DownloadError,
    NotFoundError,
    UnsafeArchiveError,
    download_file,
    read_manifest,
    sha256_file,
    write_manifest,
)
from trecs_eval.data.download_images import download_images, image_status
from trecs_eval.data.download_sources import SOURCES, RemoteFile, Source, get_source

__all__ = ["SOURCES", "RemoteFile", "Source", "download", "download_file", "get_source", "source_status"]

log = logging.getLogger(__name__)

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
        return image_status(source, root)
    manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() else {"files": {}}
    found = sum(_recorded(manifest, root, source, r) is not None for r in source.files)
    if found == len(source.files):
        return "present"
    return f"partial ({found} of {len(source.files)} files)" if found else "absent"

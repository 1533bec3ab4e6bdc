"""Download the public data the real benchmarks need (sources: :mod:`.download_sources`).

Every file goes to ``ROOT/<folder>/<name>`` through ``<name>.part``: an interrupted transfer is
resumed with an HTTP ``Range`` request (by the automatic retries, or by running the command
again). Each finished file's sha256 is checked against a pinned value where one is known and
is recorded in ``ROOT/manifest.json`` (url, bytes, sha256; unpinned files are pinned there on
first download). A body must have the length the server announced and look like the file its
name says (:mod:`.download_verify`: an HTML error page is refused). Archives are checked and
unpacked next to themselves all or nothing, before the archive replaces an older copy
(:mod:`.download_archives`: paths, links, total size and ratio, CRC), so a failed ``--force``
keeps the good copy. ``--base-url`` (or ``$TRECS_EVAL_DOWNLOAD_BASE_URL``)
points at a mirror holding the same relative paths, e.g. for offline tests.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trecs_eval.data.download_archives import check_tar_members, unpack  # noqa: F401  (re-exported)
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
    download_to_part,
    read_manifest,
    sha256_file,
    write_manifest,
)
from trecs_eval.data.download_images import download_images, image_status
from trecs_eval.data.download_sources import SOURCES, RemoteFile, Source, get_source
from trecs_eval.data.download_verify import content_kind, problem

__all__ = ["SOURCES", "RemoteFile", "Source", "download", "download_file", "get_source", "source_status"]

log = logging.getLogger(__name__)

def _unpack(archive: Path, remote: RemoteFile, dest: Path, progress: bool) -> int:
    """Unpack ``archive`` (``dest`` or still its ``.part``) next to ``dest``, all or nothing."""
    assert remote.extract is not None
    return unpack(archive, remote.extract, dest.parent, name=dest.name, progress=progress)


def _recorded(manifest: dict[str, Any], root: Path, source: Source, remote: RemoteFile) -> str | None:
    """The manifest key of a finished download of ``remote`` (any of its names), else None."""
    for candidate in remote.candidates:
        rel = f"{source.folder}/{Path(candidate).name}"
        entry = manifest["files"].get(rel)
        if entry and (root / rel).is_file() and (root / rel).stat().st_size == entry["bytes"]:
            why = problem(root / rel, content_kind(rel))
            if why is None:
                return rel
            # recorded by an older version that took any body: fetched again, not trusted
            log.warning("%s is %s, not a %s file; downloading it again", rel, why, content_kind(rel))
    return None


def _install(part: Path, dest: Path, remote: RemoteFile, progress: bool) -> dict[str, Any]:
    """Put a checked ``.part`` in place of ``dest``; an archive is unpacked first, from the part,
    so a damaged one leaves the previous copy and its unpacked files as they were."""
    extra: dict[str, Any] = {}
    try:
        if remote.extract is not None:
            extra["extracted"] = _unpack(part, remote, dest, progress)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return extra


def _fetch(base: str, root: Path, source: Source, remote: RemoteFile, retries: int,
           progress: bool) -> tuple[str, dict[str, Any]]:
    """Download (and unpack) the first of ``remote``'s candidate paths that exists; (manifest key, entry)."""
    for n, candidate in enumerate(remote.candidates):
        rel = f"{source.folder}/{Path(candidate).name}"
        url = f"{base}/{candidate}"
        try:
            part, digest = download_to_part(url, root / rel, sha256=remote.sha256, retries=retries,
                                            progress=progress)
        except NotFoundError:
            if n + 1 == len(remote.candidates):
                raise
            log.info("%s not found; trying %s", url, remote.candidates[n + 1])
            continue
        extra = _install(part, root / rel, remote, progress)
        return rel, {"url": url, "bytes": (root / rel).stat().st_size, "sha256": digest,
                     "source": source.name, "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     **extra}
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
        if remote.extract is not None and "extracted" not in entry:
            entry["extracted"] = _unpack(root / rel, remote, root / rel, progress)
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

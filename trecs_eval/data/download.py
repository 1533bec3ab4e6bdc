"""Download the public data: Localized Narratives, TReCS sequence labels, COCO val2017, COCO-Stuff.

Every file goes to ``ROOT/<folder>/<name>`` through ``<name>.part``: an interrupted transfer is
resumed with an HTTP ``Range`` request (by the automatic retries, or by running the command
again). Each finished file's sha256 is checked against a pinned value where one is known and
is recorded in ``ROOT/manifest.json`` (url, bytes, sha256). Zip archives are unpacked next to
themselves. ``--base-url`` (or ``TRECS_EVAL_DOWNLOAD_BASE_URL``) points at a mirror holding the
same relative paths, e.g. for offline tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from trecs_eval.errors import TrecsEvalError, UnknownNameError, suggest

log = logging.getLogger(__name__)

BASE_URL_ENV = "TRECS_EVAL_DOWNLOAD_BASE_URL"
MANIFEST_NAME = "manifest.json"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0

LN_BASE = "https://storage.googleapis.com/localized-narratives/annotations"
# The commit of google-research/trecs_image_generation that holds sequence_labels/ (pinned so
# the sha256 values below stay valid).
TRECS_COMMIT = "c18aff953ed2fab42be9f5f4de8e59e3a3b12140"
TRECS_BASE = f"https://raw.githubusercontent.com/google-research/trecs_image_generation/{TRECS_COMMIT}"
COCO_BASE = "http://images.cocodataset.org/zips"
COCO_STUFF_BASE = "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset"


class DownloadError(TrecsEvalError):
    """A transfer failed or a file does not match its checksum."""


class ConnectionLostError(DownloadError):
    """The connection broke mid-transfer; the bytes so far are in ``.part`` (resumable)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file: ``base_url/remote_path`` -> ``ROOT/folder/<last part of remote_path>``."""

    remote_path: str
    sha256: str | None = None  # pinned where known; None: recorded on first download
    extract: tuple[str, ...] | None = None  # zip: member prefixes to unpack (() = everything)

    @property
    def name(self) -> str:
        return PurePosixPath(self.remote_path).name


@dataclass(frozen=True)
class Source:
    """A named download: a base URL, a destination folder under ROOT, its files."""

    name: str
    base_url: str
    folder: str
    files: tuple[RemoteFile, ...]
    description: str


def _trecs(name: str, sha256: str) -> RemoteFile:
    return RemoteFile(f"sequence_labels/{name}", sha256)


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("ln-coco-val", LN_BASE, "localized_narratives",
           (RemoteFile("coco_val_localized_narratives.jsonl"),),
           "Localized Narratives, COCO val2017"),
    Source("ln-openimages-val", LN_BASE, "localized_narratives",
           (RemoteFile("open_images_validation_localized_narratives.jsonl"),),
           "Localized Narratives, Open Images validation"),
    Source("trecs-labels", TRECS_BASE, "trecs_sequence_labels", (
        _trecs("val_coco.ids.txt", "6da218c73b0b9f47bc2c5d26f001dffb7f5c12cb123223f49286f5b4fba840d2"),
        _trecs("val_coco.words.txt", "5bc33d5442a72263945124a65b63caa27c822246844ed777933add9b92b8114d"),
        _trecs("val_coco.cleaned_tags.txt",
               "272d495b3eba1e69aecc0d4f9735bdb2b87ee2c97cfac0e6ba609be781a65738"),
        _trecs("val_oi.ids.txt", "90e59b6d2207bb2a21aec47e37ffa9f108dc90d21c1465b2e492c50ead8dff1f"),
        _trecs("val_oi.words.txt", "1402ddf2af0004fd0619beb3ca4da86a1332cc57ad87464a7fd1048e136d5aa1"),
        _trecs("train_coco.ids.txt", "3e6c40463e761092ed54584f9a4d79d2e58cfd9d4ed756cdf3ead86157983747"),
    ), "TReCS word/tag sequence labels (google-research/trecs_image_generation)"),
    Source("coco-val2017", COCO_BASE, "coco", (RemoteFile("val2017.zip", extract=()),),
           "COCO 2017 validation images (5,000 JPEGs, ~780 MB)"),
    Source("coco-stuff-val2017", COCO_STUFF_BASE, "coco_stuff",
           (RemoteFile("stuffthingmaps_trainval2017.zip", extract=("val2017/",)),),
           "COCO-Stuff label maps (zip holds train+val, ~660 MB; val2017/ is unpacked)"),
)}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise UnknownNameError(f"unknown dataset {name!r}{suggest(name, SOURCES)}")
    return SOURCES[name]


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
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
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


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    tmp = root / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, root / MANIFEST_NAME)


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


def _extract(archive: Path, prefixes: tuple[str, ...], progress: bool) -> int:
    """Unpack members (under ``prefixes``; all when empty) next to the archive, refusing paths
    that would leave the folder. Returns the number of files written."""
    target = archive.parent.resolve()
    count = 0
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist()
                   if not prefixes or any(m.filename.startswith(p) for p in prefixes)]
        for member in tqdm(members, desc=f"unzip {archive.name}", disable=not progress, leave=False):
            out = (target / member.filename).resolve()
            if not out.is_relative_to(target):
                raise DownloadError(f"{archive}: member {member.filename!r} escapes the folder")
            zf.extract(member, target)
            count += not member.is_dir()
    return count


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
    base = (base_url or os.environ.get(BASE_URL_ENV) or source.base_url).rstrip("/")
    manifest = read_manifest(root)
    done = []
    for remote in source.files:
        rel = f"{source.folder}/{remote.name}"
        dest = root / rel
        entry = manifest["files"].get(rel)
        if (not force and entry and dest.is_file() and dest.stat().st_size == entry["bytes"]):
            log.info("%s: already downloaded (sha256 %s)", rel, entry["sha256"][:12])
        else:
            url = f"{base}/{remote.remote_path}"
            digest = download_file(url, dest, sha256=remote.sha256, retries=retries, progress=progress)
            entry = {"url": url, "bytes": dest.stat().st_size, "sha256": digest, "source": name,
                     "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds")}
            manifest["files"][rel] = entry
            _write_manifest(root, manifest)
        if remote.extract is not None and not entry.get("extracted"):
            entry["extracted"] = _extract(dest, remote.extract, progress)
            _write_manifest(root, manifest)
        done.append(dest)
    return done

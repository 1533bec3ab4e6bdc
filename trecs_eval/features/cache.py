"""Content-addressed feature cache in SQLite (WAL).

A row is keyed by ``(identity_key, content_key)``: ``identity_key`` is
:meth:`ExtractorIdentity.key` and ``content_key`` is the sha256 of what went into the extractor
(image file bytes, decoded pixels for in-memory images, or UTF-8 text), so a renamed folder
hits and a changed image or weight file misses. A row holds several named float32 arrays
(e.g. ``pool`` and ``logits``) packed into one BLOB, written in one transaction: a process
killed mid-write leaves either the whole row or nothing. WAL mode plus a busy timeout lets two
processes read and write the same file at once.

Location: ``$TRECS_EVAL_CACHE`` if set, else ``$XDG_CACHE_HOME/trecs-eval``, else
``~/.cache/trecs-eval``; never inside the installed package.

Damage. A row whose BLOB does not unpack (garbage, truncated) is quarantined: moved to the
``quarantine`` table, reported as a warning naming the file, and treated as a miss, so it is
recomputed. A file SQLite cannot use (corrupt pages, not a database, a disk that is full, a
path that is a file) is one :class:`TrecsEvalError` naming it and saying that deleting it is
safe: the cache only ever holds what can be computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trecs_eval.errors import InputError, TrecsEvalError

log = logging.getLogger(__name__)

CACHE_FILENAME = "features.sqlite"
BUSY_TIMEOUT_MS = 60_000  # a writer holding the lock for a large batch must not fail the reader
SQLITE_MAX_PARAMS = 900  # below the 999 parameter limit of old SQLite builds
_SCHEMA_VERSION = 1


def default_cache_dir() -> Path:
    """The user cache directory for trecs-eval (created on demand by callers)."""
    override = os.environ.get("TRECS_EVAL_CACHE")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "trecs-eval"


def content_key_for_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex of a file's bytes: the cache key of an image on disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def image_files_and_keys(paths: Sequence[str | os.PathLike[str]], what: str) -> tuple[list[str], list[str]]:
    """The files of ``paths`` (each must exist) and their content keys; ``what`` names the extractor
    in the error for an empty list."""
    files = [str(p) for p in paths]
    if not files:
        raise InputError(f"no images to {what}", field="images")
    for f in files:
        if not os.path.isfile(f):
            raise InputError("image file not found", path=f, field="image")
    return files, [content_key_for_file(f) for f in files]


def content_key_for_pixels(pixels: np.ndarray) -> str:
    """sha256 hex of decoded pixels plus their shape and dtype (in-memory images)."""
    array = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def content_key_for_text(text: str) -> str:
    """sha256 hex of UTF-8 text (CLIP text embeddings)."""
    return hashlib.sha256(b"text\0" + text.encode("utf-8")).hexdigest()


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """One BLOB for several named float32 arrays: JSON header, newline, raw little-endian data."""
    header: dict[str, list[object]] = {}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(arrays):
        data = np.ascontiguousarray(arrays[name], dtype="<f4")
        header[name] = [list(data.shape), offset, data.nbytes]
        chunks.append(data.tobytes())
        offset += data.nbytes
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + b"".join(chunks)


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays`; raises if the BLOB is truncated (never half a row)."""
    if not isinstance(blob, bytes):
        raise TrecsEvalError(f"feature cache row is not a BLOB ({type(blob).__name__})")
    head, _, body = blob.partition(b"\n")
    try:
        header = json.loads(head)
        out: dict[str, np.ndarray] = {}
        for name, (shape, offset, nbytes) in header.items():
            if offset + nbytes > len(body):
                raise TrecsEvalError(f"feature cache row is truncated (array {name!r})")
            out[name] = np.frombuffer(body, dtype="<f4", count=nbytes // 4, offset=offset).reshape(shape)
    except (ValueError, TypeError, AttributeError) as err:  # garbage header, shape or offsets
        raise TrecsEvalError(f"feature cache row is unreadable ({err})") from None
    return out


@dataclass
class CacheStats:
    """Hit/miss/write counters of one FeatureCache object (this process only)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0

    def __str__(self) -> str:
        return f"feature cache: {self.hits} hits, {self.misses} misses, {self.writes} written"


class FeatureCache:
    """SQLite feature cache; see the module docstring. Not shared across threads."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_dir() / CACHE_FILENAME
        if self.path.is_dir():
            raise TrecsEvalError(f"feature cache {self.path} is a directory, not a cache file",
                                 hint="set TRECS_EVAL_CACHE to another directory")
        from trecs_eval.atomic import ensure_dir

        ensure_dir(self.path.parent)  # a file where the cache folder should be: WriteError naming it
        with self._guard():
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                         isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode is still crash-safe for the database (only the last
            # transactions may roll back on power loss), and avoids an fsync per batch.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            for table in ("features", "quarantine"):
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (identity TEXT NOT NULL, content TEXT NOT NULL,"
                    " arrays BLOB NOT NULL, PRIMARY KEY (identity, content)) WITHOUT ROWID")
            self._conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        self.stats = CacheStats()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite failures as one error naming the file (and that deleting it is safe)."""
        try:
            yield
        except sqlite3.Error as err:
            if "full" in str(err):  # SQLITE_FULL: the disk, not the file, is the problem
                raise TrecsEvalError(f"feature cache {self.path}: the disk is full ({err})",
                                     hint="free some space and re-run; finished work is kept") from None
            raise TrecsEvalError(f"feature cache {self.path} cannot be used ({err}); it only holds "
                                 "features that are recomputed on demand: deleting it is safe") from None

    def _quarantine(self, identity_key: str, content: str, reason: str) -> None:
        """Move an unreadable row out of the way (kept for inspection); it is recomputed as a miss."""
        log.warning("feature cache %s: quarantined an unreadable row (%s); it will be recomputed",
                    self.path, reason)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("INSERT OR REPLACE INTO quarantine SELECT identity, content, "
                               "CAST(arrays AS BLOB) FROM features WHERE identity=? AND content=?",
                               (identity_key, content))
            self._conn.execute("DELETE FROM features WHERE identity=? AND content=?", (identity_key, content))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def get_many(self, identity_key: str, content_keys: Iterable[str]
                 ) -> dict[str, dict[str, np.ndarray]]:
        """Cached arrays for the keys present; absent keys are simply missing from the result."""
        keys = list(dict.fromkeys(content_keys))
        found: dict[str, dict[str, np.ndarray]] = {}
        for start in range(0, len(keys), SQLITE_MAX_PARAMS):
            chunk = keys[start:start + SQLITE_MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            with self._guard():
                rows = self._conn.execute(
                    f"SELECT content, arrays FROM features WHERE identity=? AND content IN ({marks})",
                    [identity_key, *chunk]).fetchall()
                for content, blob in rows:
                    try:
                        found[content] = unpack_arrays(blob)
                    except TrecsEvalError as err:
                        self._quarantine(identity_key, content, str(err))
        self.stats.hits += len(found)
        self.stats.misses += len(keys) - len(found)
        return found

    def put_many(self, identity_key: str,
                 entries: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Store rows in one transaction (all or nothing); existing rows are replaced."""
        rows = [(identity_key, key, pack_arrays(arrays)) for key, arrays in entries.items()]
        if not rows:
            return
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO features (identity, content, arrays) VALUES (?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        self.stats.writes += len(rows)

    def count(self, identity_key: str | None = None) -> int:
        """Number of rows (for one identity, or all)."""
        with self._guard():
            if identity_key is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM features").fetchone()[0])
            return int(self._conn.execute("SELECT COUNT(*) FROM features WHERE identity=?",
                                          (identity_key,)).fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

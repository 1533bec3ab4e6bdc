"""One way to write a file atomically: a temp file in the same folder, then ``os.replace``.

A reader (or a resumed run) sees the old file or the whole new one, never half a file; a failure
removes the temp file. New files get the permissions the umask allows (mkstemp alone gives 0600).
A write the system refuses (disk full, read-only, a file where a folder should be) is a one-line
:class:`~trecs_eval.errors.WriteError` naming the target, and the old file is left as it was. A
target under a claimed run folder whose folder resolves outside it (a link) is refused before
anything is written (:mod:`trecs_eval.confine`).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from trecs_eval.confine import check_registered
from trecs_eval.errors import WriteError

# errno values that mean "the system refused the write" (not a bug in the caller)
_REFUSED = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
            errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}


def file_mode(directory: bool = False) -> int:
    """Permissions of a new file (or directory) under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (or ``path`` itself) that is not a directory, if any:
    why ``mkdir(parents=True)`` would fail."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` whose failure is a WriteError naming the file that is in the way."""
    folder = Path(path)
    check_registered(folder / "_")  # never through a link out of a run folder (atomic_write too)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocker = blocking_file(folder)
        if blocker is not None:
            raise WriteError(f"{blocker} is a file, not a folder: cannot create {folder}") from None
        raise write_error(folder, err) from None
    return folder


def write_error(target: Path, err: OSError) -> WriteError:
    """A one-line error for an OS refusal while writing ``target``."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    hint = ("free some space and re-run; files already written are kept" if err.errno in
            (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else None)
    return WriteError(f"cannot write {target}: {reason}", hint=hint)


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None,
                 fsync: bool = False) -> Iterator[IO[Any]]:
    """``with atomic_write(p, "w", encoding="utf-8") as fh: ...``; ``p`` appears only on success.

    ``fsync=True`` flushes the data to disk before the rename (files a kill -9 must not lose).
    """
    target = Path(path)
    ensure_dir(target.parent)
    if target.is_dir():
        raise WriteError(f"cannot write {target}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise write_error(target, err) from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.errno in _REFUSED:
            raise write_error(target, err) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically; returns the path."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bytes atomically; returns the path."""
    with atomic_write(path) as fh:
        fh.write(data)
    return Path(path)

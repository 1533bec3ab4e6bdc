"""Every write and delete of a run stays inside its run folder, whatever links the folder holds.

A user may put a symbolic link into a run folder (``images/noise -> ~/Pictures``, to use a bigger
disk), or a tampered folder may hold one where a bookkeeping file should be. Two rules keep every
byte outside the run folder untouched:

- **Resolve and check before writing or deleting.** :func:`check_inside` resolves the folder a
  path lies in and refuses (:class:`OutsideRunDirError`, one line naming the link) when it leads
  out of the run folder. A run folder is registered once it is claimed (:func:`register_root`),
  and :func:`trecs_eval.atomic.atomic_write` checks every target under a registered folder, so
  results, features and reports are covered as well as images and ``--force``'s deletions.
- **Bookkeeping files are never followed.** The lock, the provenance logs and the written-files
  log are opened with :func:`open_plain` (``O_NOFOLLOW``; a FIFO, device or hard-linked file is
  refused too): appending to them or truncating them can never reach another file.

Replacing a file atomically (``os.replace``) replaces a link itself, never its target, so atomic
writes need only the folder check.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from trecs_eval.errors import WriteError

_ROOTS: dict[Path, Path] = {}  # run folder as named (absolute) -> resolved
_FIX = "remove the link (to put a run on another disk, point out_dir itself there)"


class OutsideRunDirError(WriteError):
    """A write or delete would leave the run folder through a link."""


def register_root(run_dir: Path | str) -> None:
    """Confine atomic writes under ``run_dir`` to the folder it resolves to."""
    named = Path(os.path.abspath(run_dir))
    _ROOTS[named] = named.resolve()


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _escaping_link(root: Path, resolved_root: Path, folder: Path) -> tuple[Path, Path]:
    """The first link on the way from ``root`` to ``folder`` that leads outside, and its target."""
    for candidate in reversed((folder, *folder.parents)):
        if _is_within(candidate, root) and candidate != root and candidate.is_symlink():
            target = candidate.resolve()
            if not _is_within(target, resolved_root):
                return candidate, target
    return folder, folder.resolve()


def check_inside(root: Path | str, path: Path | str) -> Path:
    """``path``, once checked: the folder it lies in resolves inside ``root``. Otherwise
    OutsideRunDirError naming the link that leads out (nothing is written or deleted)."""
    root, path = Path(os.path.abspath(root)), Path(os.path.abspath(path))
    resolved_root = root.resolve()
    if _is_within(path.parent.resolve(), resolved_root):
        return path
    link, target = _escaping_link(root, resolved_root, path.parent)
    raise OutsideRunDirError(f"{link} leads to {target}, outside the run folder {resolved_root}; "
                             "trecs-eval writes and deletes only inside its run folder", hint=_FIX)


def check_registered(path: Path | str) -> None:
    """:func:`check_inside` for ``path`` if it lies (as named) under a registered run folder."""
    named = Path(os.path.abspath(path))
    for root in _ROOTS:
        if root in named.parents:
            check_inside(root, named)


def open_plain(path: Path | str, flags: int, root: Path | str | None = None) -> int:
    """``os.open`` for a bookkeeping file: never through a link (``O_NOFOLLOW``), only a regular
    file with one name (a FIFO would block, a hard link would share the user's bytes), inside
    ``root`` if given. Refusals are one-line WriteErrors naming the file; a missing file (without
    ``O_CREAT``) raises FileNotFoundError as ``os.open`` does."""
    if root is not None:
        check_inside(root, path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
    except OSError as err:
        if err.errno == errno.ENOENT:
            raise
        if err.errno == errno.ELOOP:
            raise _not_plain(path, "is a symbolic link") from None
        if err.errno == errno.ENXIO:  # a FIFO without a reader, opened for writing
            raise _not_plain(path, "is not a regular file") from None
        raise WriteError(f"cannot open {path}: {os.strerror(err.errno or 0)}") from None
    info = os.fstat(fd)
    problem = ("is not a regular file" if not stat.S_ISREG(info.st_mode)
               else f"has {info.st_nlink} hard links" if info.st_nlink > 1 else "")
    if problem:
        os.close(fd)
        raise _not_plain(path, problem)
    return fd


def _not_plain(path: Path | str, problem: str) -> WriteError:
    return WriteError(f"{path} {problem}; trecs-eval opens its bookkeeping files only as plain files of "
                      "its own, never through a link", hint="remove it; the run recreates the file")


def read_plain(path: Path | str, root: Path | str | None = None) -> str | None:
    """The UTF-8 text of a bookkeeping file (undecodable bytes replaced), None when it is absent."""
    try:
        fd = open_plain(path, os.O_RDONLY, root)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read().decode("utf-8", "replace")


def append_plain(path: Path | str, text: str, root: Path | str | None = None, fsync: bool = False) -> None:
    """Append ``text`` to a bookkeeping file (created if absent), never through a link."""
    fd = open_plain(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, root)
    with os.fdopen(fd, "ab") as fh:
        fh.write(text.encode("utf-8"))
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())

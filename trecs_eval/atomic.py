"""One way to write a file atomically: a temp file in the same folder, then ``os.replace``.

A reader (or a resumed run) sees the old file or the whole new one, never half a file; a failure
removes the temp file. New files get the permissions the umask allows (mkstemp alone gives 0600).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def file_mode() -> int:
    """Permissions of a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None,
                 fsync: bool = False) -> Iterator[IO[Any]]:
    """``with atomic_write(p, "w", encoding="utf-8") as fh: ...``; ``p`` appears only on success.

    ``fsync=True`` flushes the data to disk before the rename (files a kill -9 must not lose).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

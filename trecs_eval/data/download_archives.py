"""Unpacking a downloaded zip or tar: every member checked before a byte is written, all or nothing.

1. **Plan** (nothing written): each member's path must stay inside the folder (no absolute path,
   no ``..``; tar: no link, device or fifo); the declared unpacked total must stay under
   :data:`MAX_UNPACKED_BYTES_ENV` (default 100 GB), under the free disk space, and within
   :data:`MAX_RATIO_ENV` (default 100) times the archive's size, for the whole archive and for
   each member over 1 MiB: a zip bomb is refused before it inflates.
2. **Stage**: members are unpacked into ``.<archive>.unpacking/`` next to the archive. A zip
   member is streamed, never more than its declared size, and must end at exactly that size with
   its CRC right; a damaged member stops everything (the staging folder is removed: no 0-byte
   file named like a real image is left behind).
3. **Commit**: only after every member was staged are the files moved into place, one
   ``os.replace`` each (a symlink at a destination is replaced, never written through).

A failure in 1 or 2 leaves the folder as it was, so a bad ``--force`` download keeps the good
copy and its unpacked files.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from trecs_eval.data.download_http import CHUNK_BYTES, DownloadError, UnsafeArchiveError

MAX_UNPACKED_BYTES_ENV = "TRECS_EVAL_MAX_UNPACKED_BYTES"
MAX_RATIO_ENV = "TRECS_EVAL_MAX_UNPACK_RATIO"
DEFAULT_MAX_UNPACKED_BYTES = 100 * 10**9  # COCO train2017 unpacks to 19 GB
DEFAULT_MAX_RATIO = 100.0  # COCO's JSON annotations compress about 8:1, images about 1:1
RATIO_MIN_MEMBER_BYTES = 1 << 20  # small members compress oddly (a file of spaces) and cannot hurt
MAX_MEMBERS = 1_000_000  # COCO train2017 has 118,288; millions of empty files would exhaust inodes
DAMAGED_HINT = "not the released archive: check --base-url (a refused download is not kept) or delete it"


@dataclass(frozen=True)
class Limits:
    """The most an archive may unpack to, in bytes and as a multiple of its own size."""

    max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO

    @classmethod
    def from_env(cls) -> Limits:
        try:
            return cls(int(os.environ.get(MAX_UNPACKED_BYTES_ENV, DEFAULT_MAX_UNPACKED_BYTES)),
                       float(os.environ.get(MAX_RATIO_ENV, DEFAULT_MAX_RATIO)))
        except ValueError as err:
            raise DownloadError(f"${MAX_UNPACKED_BYTES_ENV} / ${MAX_RATIO_ENV}: not a number ({err})") \
                from None


def _refuse(archive: Path, what: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: {what}; refused (nothing was unpacked)", hint=DAMAGED_HINT)


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise _refuse(archive, f"member {name!r} escapes the folder")
    return path


def check_budget(archive: Path, members: list[tuple[str, int, int]], target: Path, limits: Limits) -> int:
    """Refuse before writing when (name, declared size, stored size) members unpack to too much."""
    if len(members) > MAX_MEMBERS:
        raise _refuse(archive, f"holds {len(members):,} members, over the limit of {MAX_MEMBERS:,}")
    total = sum(size for _, size, _ in members)
    stored = max(archive.stat().st_size, 1)
    if total > limits.max_bytes:
        raise _refuse(archive, f"unpacks to {total:,} bytes, over the limit of {limits.max_bytes:,} "
                               f"(${MAX_UNPACKED_BYTES_ENV})")
    if total > limits.max_ratio * stored and total > RATIO_MIN_MEMBER_BYTES:
        raise _refuse(archive, f"unpacks to {total:,} bytes from {stored:,} ({total / stored:,.0f}:1, over "
                               f"{limits.max_ratio:g}:1, ${MAX_RATIO_ENV}): a zip bomb?")
    for name, size, packed in members:
        if size > RATIO_MIN_MEMBER_BYTES and size > limits.max_ratio * max(packed, 1):
            raise _refuse(archive, f"member {name!r} inflates {size:,} bytes from {packed:,} "
                                   f"(over {limits.max_ratio:g}:1): a zip bomb?")
    free = shutil.disk_usage(target).free
    if total > free:
        raise _refuse(archive, f"unpacks to {total:,} bytes but {target} has {free:,} bytes free")
    return total


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
            raise _refuse(archive, f"member {name!r} is {kind}")


def _zip_members(zf: zipfile.ZipFile, archive: Path, prefixes: tuple[str, ...]) -> list[zipfile.ZipInfo]:
    members = [m for m in zf.infolist() if not prefixes or any(m.filename.startswith(p) for p in prefixes)]
    if prefixes and not any(not m.is_dir() for m in members):
        raise DownloadError(f"{archive}: no member under {', '.join(prefixes)} (first members: "
                            f"{', '.join(zf.namelist()[:3])})", hint="the archive's layout changed")
    seen: set[PurePosixPath] = set()
    for member in members:
        path = _safe_name(archive, member.filename)
        if path in seen and not member.is_dir():
            raise _refuse(archive, f"member {member.filename!r} appears twice")
        seen.add(path)
    return members


def _copy_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, out: Path, archive: Path) -> None:
    """Stream one member, never more than its declared size; it must end at that size, CRC right."""
    written = 0
    try:
        with zf.open(member) as src, open(out, "xb") as dst:
            while block := src.read(min(CHUNK_BYTES, member.file_size - written + 1)):
                written += len(block)
                if written > member.file_size:
                    raise _refuse(archive, f"member {member.filename!r} holds more than its declared "
                                           f"{member.file_size:,} bytes")
                dst.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
        raise DownloadError(f"{archive}: member {member.filename!r} is damaged ({err}); nothing was unpacked",
                            hint=DAMAGED_HINT) from None
    if written != member.file_size:
        raise DownloadError(f"{archive}: member {member.filename!r} holds {written:,} bytes but declares "
                            f"{member.file_size:,}; nothing was unpacked", hint=DAMAGED_HINT)


def _stage_zip(archive: Path, prefixes: tuple[str, ...], staging: Path, limits: Limits,
               progress: bool) -> int:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DownloadError(f"{archive}: not a readable zip archive ({err})", hint=DAMAGED_HINT) from None
    with zf:
        members = _zip_members(zf, archive, prefixes)
        check_budget(archive, [(m.filename, m.file_size, m.compress_size) for m in members], staging, limits)
        count = 0
        for member in tqdm(members, desc=f"unzip {archive.name}", disable=not progress, leave=False):
            out = staging / _safe_name(archive, member.filename)
            if member.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            _copy_member(zf, member, out, archive)
            count += 1
    return count


def _stage_tar(archive: Path, staging: Path, limits: Limits, progress: bool) -> int:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            check_tar_members(archive, members)
            check_budget(archive, [(m.name, m.size, m.size) for m in members], staging, limits)
            for member in tqdm(members, desc=f"untar {archive.name}", disable=not progress, leave=False):
                tf.extract(member, staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DownloadError(f"{archive}: cannot unpack ({err}); nothing was unpacked") from None
    return sum(m.isfile() for m in members)


def _commit(staging: Path, target: Path) -> None:
    """Move every staged file to its place under ``target`` (one atomic replace per file)."""
    for folder, _dirs, files in os.walk(staging):
        rel = Path(folder).relative_to(staging)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(Path(folder) / name, target / rel / name)


def _clear(staging: Path) -> None:
    if staging.is_symlink() or staging.is_file():
        staging.unlink()
    elif staging.exists():
        shutil.rmtree(staging)


def unpack(archive: Path, prefixes: tuple[str, ...], target: Path, *, name: str | None = None,
           progress: bool = True, limits: Limits | None = None) -> int:
    """Unpack ``archive`` (a ``.tar``, else a zip; zip members under ``prefixes``, all when empty)
    into ``target``, all or nothing; ``name`` is the archive's final name when ``archive`` is still
    its ``.part``. Returns the number of files written."""
    limits = limits or Limits.from_env()
    name = name or archive.name
    staging = target / f".{name}.unpacking"  # our own scratch folder: a leftover is from a killed run
    _clear(staging)
    staging.mkdir(parents=True)
    try:
        if name.endswith(".tar"):
            count = _stage_tar(archive, staging, limits, progress)
        else:
            count = _stage_zip(archive, prefixes, staging, limits, progress)
        _commit(staging, target)
    except DownloadError as err:
        if archive.name != name:  # still the .part: name the file the user asked for
            err.message = err.message.replace(str(archive), str(archive.with_name(name)))
            err.args = (err.message,)
        raise
    finally:
        _clear(staging)
    return count

"""Localized Narratives JSONL: a streaming reader (plain or gzip, sharded files) and a writer.

One JSON object per line, with the fields of the official release
(https://google.github.io/localized-narratives/)::

    {"dataset_id": "mscoco_val2017", "image_id": "137576", "annotator_id": 93,
     "caption": "In this image there are ...",
     "timed_caption": [{"utterance": "In this", "start_time": 0.0, "end_time": 0.4}, ...],
     "traces": [[{"x": 0.2086, "y": -0.0533, "t": 0.022}, ...], ...],
     "voice_recording": "coco_val/coco_val_137576_93.ogg"}

The reader never loads a file whole: it decodes, parses and validates one line at a time.
Every malformed line raises :class:`~trecs_eval.errors.InputError` naming file, line (1-based)
and field; with ``on_error="skip"`` the line is skipped instead and recorded in a
:class:`SkippedLine` list that the caller gets back (and a warning is logged), never silently.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from trecs_eval.atomic import atomic_write
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint
from trecs_eval.errors import InputError

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
GZIP_MAGIC = b"\x1f\x8b"

# Official file names of the release (annotations/ on storage.googleapis.com/localized-narratives).
OFFICIAL_FILES: dict[str, str] = {
    "coco_val": "coco_val_localized_narratives.jsonl",
    "coco_train": "coco_train_localized_narratives-{shard:05d}-of-00004.jsonl",
    "open_images_val": "open_images_validation_localized_narratives.jsonl",
    "open_images_test": "open_images_test_localized_narratives.jsonl",
    "open_images_train": "open_images_train_v6_localized_narratives-{shard:05d}-of-00010.jsonl",
    "flickr30k_val": "flickr30k_val_localized_narratives.jsonl",
    "flickr30k_test": "flickr30k_test_localized_narratives.jsonl",
    "flickr30k_train": "flickr30k_train_localized_narratives.jsonl",
    "ade20k_val": "ade20k_validation_localized_narratives.jsonl",
    "ade20k_train": "ade20k_train_localized_narratives.jsonl",
}
_SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.jsonl(?:\.gz)?$")
_NARRATIVE_FILE = re.compile(r"\.jsonl(\.gz)?$")
# Characters that would let an id escape a directory or break a line-based ids file.
_UNSAFE_ID_CHARS = re.compile(r"[/\\\x00-\x20\x7f]")
_REQUIRED = ("dataset_id", "image_id", "annotator_id", "caption", "timed_caption", "traces")


@dataclass(frozen=True)
class SkippedLine:
    """A malformed line that ``on_error="skip"`` left out."""

    path: str
    line: int
    field: str | None
    message: str  # the full InputError text, which starts with "path:line: field ..."

    def __str__(self) -> str:
        return self.message


@dataclass
class NarrativeFile:
    """Narratives read from one or more JSONL files, and the lines skipped (``on_error="skip"``)."""

    narratives: list[Narrative]
    skipped: list[SkippedLine] = field(default_factory=list)
    paths: tuple[Path, ...] = ()

    def __len__(self) -> int:
        return len(self.narratives)


def safe_id(value: str, path: str | None, line: int | None, field_name: str) -> str:
    """``value`` if it can be used as a file-name component, else an InputError.

    Rejected: empty, ``.``/``..``, and any ``/``, ``\\``, NUL, control or whitespace character.
    """
    if not value or value in (".", "..") or _UNSAFE_ID_CHARS.search(value):
        raise InputError(
            f"{value!r} cannot be used in a file name (no '/', '\\', NUL, whitespace, '.' or '..')",
            path, line, field_name,
        )
    return value


def narrative_files(path: str | os.PathLike[str]) -> list[Path]:
    """The JSONL files a path stands for, in order.

    A file is itself; a shard (``...-00001-of-00004.jsonl``) is itself; a directory is every
    ``*.jsonl`` / ``*.jsonl.gz`` inside it (sorted). For a directory holding shards, all
    ``count`` shards of each stem must be present, otherwise InputError (a partial download).
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise InputError("no such file or directory", str(p))
    files = sorted(f for f in p.iterdir() if f.is_file() and _NARRATIVE_FILE.search(f.name))
    if not files:
        raise InputError("no *.jsonl or *.jsonl.gz files in this directory", str(p))
    shards: dict[tuple[str, int], set[int]] = {}
    for f in files:
        m = _SHARD.match(f.name)
        if m:
            shards.setdefault((m["stem"], int(m["count"])), set()).add(int(m["index"]))
    for (stem, count), found in shards.items():
        missing = sorted(set(range(count)) - found)
        if missing:
            raise InputError(
                f"shards {missing} of {stem} (of {count}) are missing", str(p),
                hint="download every shard, e.g. `trecs-eval data download ...`",
            )
    return files


def _open_binary(path: Path) -> IO[bytes]:
    """Open plain or gzip (detected by magic bytes, not by name)."""
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed there
    magic = raw.read(2)
    raw.seek(0)
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _number(value: Any, where: str, path: str, line: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected a number, got {type(value).__name__}", path, line, where)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InputError(f"expected a finite number, got {str(value)[:20]}", path, line, where)
    return number


def _string(obj: dict[str, Any], key: str, path: str, line: int) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {type(value).__name__}", path, line, key)
    return value


def _list(value: Any, where: str, path: str, line: int) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"expected a list, got {type(value).__name__}", path, line, where)
    return value


def _timed_caption(value: Any, path: str, line: int) -> tuple[TimedUtterance, ...]:
    out = []
    for i, utt in enumerate(_list(value, "timed_caption", path, line)):
        where = f"timed_caption[{i}]"
        if not isinstance(utt, dict):
            raise InputError("expected an object", path, line, where)
        for key in ("utterance", "start_time", "end_time"):
            if key not in utt:
                raise InputError("missing field", path, line, f"{where}.{key}")
        if not isinstance(utt["utterance"], str):
            raise InputError("expected a string", path, line, f"{where}.utterance")
        start = _number(utt["start_time"], f"{where}.start_time", path, line)
        end = _number(utt["end_time"], f"{where}.end_time", path, line)
        if start > end:
            raise InputError(f"start_time {start} > end_time {end}", path, line, where)
        out.append(TimedUtterance(utt["utterance"], start, end))
    return tuple(out)


def _fast_segment(segment: Any) -> tuple[TracePoint, ...] | None:
    """The segment's points if every point is a dict of finite int/float x, y, t; else None
    (then the slow path finds and names the first bad field)."""
    try:
        values = [(p["x"], p["y"], p["t"]) for p in segment]
    except (TypeError, KeyError):
        return None
    flat = [v for xyt in values for v in xyt]
    # A finite sum proves every term finite (inf and nan propagate through a sum).
    try:
        if not all(type(v) is float or type(v) is int for v in flat) or not math.isfinite(sum(flat)):
            return None
        return tuple(TracePoint(float(x), float(y), float(t)) for x, y, t in values)
    except OverflowError:  # an integer beyond float range
        return None


def _traces(value: Any, path: str, line: int) -> tuple[tuple[TracePoint, ...], ...]:
    segments = []
    for i, segment in enumerate(_list(value, "traces", path, line)):
        fast = _fast_segment(segment) if isinstance(segment, list) else None
        if fast is not None:
            segments.append(fast)
            continue
        points = []
        for j, point in enumerate(_list(segment, f"traces[{i}]", path, line)):
            where = f"traces[{i}][{j}]"
            if not isinstance(point, dict):
                raise InputError("expected an object with x, y, t", path, line, where)
            coords = []
            for key in ("x", "y", "t"):
                if key not in point:
                    raise InputError("missing field", path, line, f"{where}.{key}")
                coords.append(_number(point[key], f"{where}.{key}", path, line))
            points.append(TracePoint(*coords))
        segments.append(tuple(points))
    return tuple(segments)


def narrative_from_dict(obj: Any, path: str = "<dict>", line: int = 0) -> Narrative:
    """Validate one parsed LN record into a Narrative; InputError names path, line and field.

    ``image_id`` may be a string or an integer (kept as its decimal string); ``annotator_id``
    must be an integer; ``voice_recording`` is optional (empty string when absent).
    """
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", path, line)
    for key in _REQUIRED:
        if key not in obj:
            raise InputError("missing field", path, line, key)
    image_id = obj["image_id"]
    if isinstance(image_id, int) and not isinstance(image_id, bool):
        image_id = str(image_id)
    if not isinstance(image_id, str):
        raise InputError(f"expected a string, got {type(image_id).__name__}", path, line, "image_id")
    annotator_id = obj["annotator_id"]
    if isinstance(annotator_id, bool) or not isinstance(annotator_id, int):
        raise InputError(f"expected an integer, got {annotator_id!r}", path, line, "annotator_id")
    caption = _string(obj, "caption", path, line)
    if not caption.strip():
        raise InputError("empty caption", path, line, "caption")
    voice = obj.get("voice_recording", "")
    if not isinstance(voice, str):
        raise InputError("expected a string", path, line, "voice_recording")
    return Narrative(
        dataset_id=_string(obj, "dataset_id", path, line),
        image_id=safe_id(image_id, path, line, "image_id"),
        annotator_id=annotator_id,
        caption=caption,
        timed_caption=_timed_caption(obj["timed_caption"], path, line),
        traces=_traces(obj["traces"], path, line),
        voice_recording=voice,
    )


def _parse_line(raw: bytes, path: str, line: int) -> Narrative | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"not valid UTF-8 (byte {err.start}: {raw[err.start:err.start + 1]!r})",
                         path, line) from None
    if not text.strip():
        return None  # blank lines (e.g. a trailing newline) are not records
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"bad JSON: {err.msg} at column {err.colno}", path, line) from None
    return narrative_from_dict(obj, path, line)


def iter_narratives(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    on_error: OnError = "raise",
    skipped: list[SkippedLine] | None = None,
) -> Iterator[Narrative]:
    """Stream narratives from a file, a directory of (sharded) files, or a list of those.

    ``on_error="raise"``: the first malformed line raises InputError(path, line, field).
    ``on_error="skip"``: malformed lines are appended to ``skipped`` (required) and left out.
    A duplicate ``item_id`` (also across shards) counts as a malformed line.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if on_error == "skip" and skipped is None:
        raise ValueError("on_error='skip' needs a `skipped` list to record the skipped lines in")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    seen: dict[str, tuple[str, int]] = {}
    for given in paths:
        for file in narrative_files(given):
            yield from _iter_file(file, on_error, skipped, seen)


def _lines(handle: IO[bytes], path: str) -> Iterator[bytes]:
    """Lines of a (possibly gzip) file; a corrupt or truncated gzip stream is an InputError
    naming the line it broke on (it cannot be skipped: nothing after it can be read)."""
    number = 0
    try:
        for number, raw in enumerate(handle, start=1):  # noqa: B007 - used after the loop
            yield raw
    except (OSError, EOFError) as err:
        raise InputError(f"cannot read past this line: {err}", path, number + 1,
                         hint="the file may be truncated; download it again") from None


def _iter_file(
    file: Path, on_error: OnError, skipped: list[SkippedLine] | None,
    seen: dict[str, tuple[str, int]],
) -> Iterator[Narrative]:
    path = str(file)
    with _open_binary(file) as handle:
        for number, raw in enumerate(_lines(handle, path), start=1):
            try:
                narrative = _parse_line(raw, path, number)
                if narrative is None:
                    continue
                first = seen.get(narrative.item_id)
                if first is not None:
                    raise InputError(f"duplicate item id {narrative.item_id!r} (first at "
                                     f"{first[0]}:{first[1]})", path, number, "image_id")
            except InputError as err:
                if on_error == "raise":
                    raise
                assert skipped is not None
                skipped.append(SkippedLine(path, number, err.field, str(err)))
                continue
            seen[narrative.item_id] = (path, number)
            yield narrative


def read_narratives(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    on_error: OnError = "raise",
) -> NarrativeFile:
    """All narratives of ``paths`` in a list (see :func:`iter_narratives`), plus skipped lines.

    With ``on_error="skip"`` a warning gives the number of skipped lines and the first few.
    """
    skipped: list[SkippedLine] = []
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    narratives = list(iter_narratives(given, on_error=on_error, skipped=skipped))
    if skipped:
        shown = "; ".join(str(s) for s in skipped[:3])
        log.warning("skipped %d malformed line(s): %s%s", len(skipped), shown,
                    " ..." if len(skipped) > 3 else "")
    files = tuple(f for p in given for f in narrative_files(p))
    return NarrativeFile(narratives, skipped, files)


def narrative_to_dict(narrative: Narrative) -> dict[str, Any]:
    """The LN JSON object of a narrative (official field names and order)."""
    return {
        "dataset_id": narrative.dataset_id,
        "image_id": narrative.image_id,
        "annotator_id": narrative.annotator_id,
        "caption": narrative.caption,
        "timed_caption": [
            {"utterance": u.utterance, "start_time": u.start_time, "end_time": u.end_time}
            for u in narrative.timed_caption
        ],
        "traces": [[{"x": p.x, "y": p.y, "t": p.t} for p in seg] for seg in narrative.traces],
        "voice_recording": narrative.voice_recording,
    }


def write_narratives_jsonl(path: str | os.PathLike[str], narratives: Iterable[Narrative]) -> Path:
    """Write narratives as LN JSONL (gzip if the name ends in ``.gz``); atomic via a temp file.

    Non-finite numbers raise ValueError (``allow_nan=False``): the reader would reject them.
    """
    out = Path(path)
    with atomic_write(out) as raw:
        # mtime=0: the same narratives give the same .gz bytes
        binary = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if out.name.endswith(".gz") else raw
        handle = io.TextIOWrapper(binary, encoding="utf-8", newline="\n")
        for narrative in narratives:
            handle.write(json.dumps(narrative_to_dict(narrative), ensure_ascii=False, allow_nan=False))
            handle.write("\n")
        handle.flush()
        handle.detach()  # the raw file is closed (and renamed) by atomic_write
        if binary is not raw:
            binary.close()
    return out

"""TReCS sequence-label files: ``{split}.ids.txt``, ``.words.txt``, ``.tags.txt``/``.cleaned_tags.txt``.

The files are line-aligned: line *i* of each describes the same narrative. ``ids`` holds
``{image_id}_{annotator_id}``; ``words`` the tokenized caption, space-separated; ``tags`` one
COCO-Stuff label name per word. Tokens are read with ``str.split()`` exactly as released (the
words files contain a few non-ASCII marks such as ``´`` and ``¨``); nothing is re-tokenized.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trecs_eval.atomic import write_text
from trecs_eval.data.coco_stuff import NAME_TO_ID
from trecs_eval.errors import InputError, suggest

TagKind = Literal["auto", "cleaned_tags", "tags", "none"]
TAG_SUFFIXES = ("cleaned_tags", "tags")  # preference order for tags="auto"


@dataclass(frozen=True)
class SequenceLabels:
    """One split of TReCS sequence labels; ``tags`` is None when the split has no tag file."""

    split: str
    ids: tuple[str, ...]
    words: tuple[tuple[str, ...], ...]
    tags: tuple[tuple[str, ...], ...] | None = None
    tags_file: str | None = None  # "cleaned_tags" or "tags": which file the tags came from

    def __len__(self) -> int:
        return len(self.ids)

    def index(self) -> dict[str, int]:
        """item id -> line index (0-based)."""
        return {item_id: i for i, item_id in enumerate(self.ids)}

    @property
    def n_words(self) -> int:
        return sum(len(w) for w in self.words)

    def label_counts(self) -> dict[str, int]:
        """How often each tag occurs (empty when there are no tags)."""
        counts: dict[str, int] = {}
        for line in self.tags or ():
            for tag in line:
                counts[tag] = counts.get(tag, 0) + 1
        return counts


def split_file(root: str | os.PathLike[str], split: str, kind: str) -> Path:
    """``root/{split}.{kind}.txt`` (kind: ids, words, tags, cleaned_tags)."""
    return Path(root) / f"{split}.{kind}.txt"


def list_splits(root: str | os.PathLike[str]) -> list[str]:
    """Splits in ``root`` that have both an ids and a words file (sorted)."""
    root = Path(root)
    return sorted(
        p.name[: -len(".ids.txt")] for p in root.glob("*.ids.txt")
        if split_file(root, p.name[: -len(".ids.txt")], "words").is_file()
    )


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file without their line ends; a final newline adds no line."""
    if not path.is_file():
        raise InputError("file not found", str(path))
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise InputError(f"not valid UTF-8 (byte {err.start})", str(path), number) from None
    return out


def _check_ids(ids: list[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for number, item_id in enumerate(ids, start=1):
        if not item_id or len(item_id.split()) != 1 or item_id != item_id.strip():
            raise InputError(f"expected one item id, got {item_id!r}", str(path), number, "id")
        if item_id in seen:
            raise InputError(f"duplicate item id {item_id!r} (first on line {seen[item_id]})",
                             str(path), number, "id")
        seen[item_id] = number


def _check_lengths(files: dict[str, list[str]], paths: dict[str, Path]) -> None:
    n_ids = len(files["ids"])
    for kind, lines in files.items():
        if len(lines) != n_ids:
            line = min(len(lines), n_ids) + 1
            raise InputError(
                f"{len(lines)} lines, but {paths['ids'].name} has {n_ids} (files must be line-aligned)",
                str(paths[kind]), line,
            )


def _check_tags(words: list[tuple[str, ...]], tags: list[tuple[str, ...]], path: Path,
                validate_labels: bool) -> None:
    for number, (w, t) in enumerate(zip(words, tags, strict=True), start=1):
        if len(w) != len(t):
            raise InputError(f"{len(t)} tags for {len(w)} words (one tag per word expected)",
                             str(path), number, "tags")
        if validate_labels:
            for tag in t:
                if tag not in NAME_TO_ID:
                    raise InputError(f"unknown COCO-Stuff label {tag!r}{suggest(tag, NAME_TO_ID)}",
                                     str(path), number, "tags")


def _tag_suffix(root: Path, split: str, tags: TagKind) -> str | None:
    if tags == "none":
        return None
    if tags == "auto":
        return next((s for s in TAG_SUFFIXES if split_file(root, split, s).is_file()), None)
    if tags not in TAG_SUFFIXES:
        raise ValueError(f"tags must be one of auto, cleaned_tags, tags, none; got {tags!r}")
    return tags


def read_sequence_labels(
    root: str | os.PathLike[str],
    split: str,
    *,
    tags: TagKind = "auto",
    validate_labels: bool = True,
) -> SequenceLabels:
    """Read ``root/{split}.{ids,words,tags|cleaned_tags}.txt``.

    ``tags="auto"`` takes ``cleaned_tags`` if present, else ``tags``, else none. Errors
    (InputError naming file and line): missing ids/words file, files of different lengths,
    a line whose word and tag counts differ, a duplicate or malformed id, an unknown label
    (when ``validate_labels``), non-UTF-8 bytes.
    """
    root = Path(root)
    suffix = _tag_suffix(root, split, tags)
    kinds = ["ids", "words"] + ([suffix] if suffix else [])
    paths = {kind: split_file(root, split, kind) for kind in kinds}
    files = {kind: _read_lines(path) for kind, path in paths.items()}
    _check_lengths(files, paths)
    _check_ids(files["ids"], paths["ids"])
    words = [tuple(line.split()) for line in files["words"]]
    tag_lines = None
    if suffix:
        tag_lines = [tuple(line.split()) for line in files[suffix]]
        _check_tags(words, tag_lines, paths[suffix], validate_labels)
    return SequenceLabels(
        split=split,
        ids=tuple(files["ids"]),
        words=tuple(words),
        tags=tuple(tag_lines) if tag_lines is not None else None,
        tags_file=suffix,
    )


def write_sequence_labels(
    root: str | os.PathLike[str],
    split: str,
    ids: Sequence[str],
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]] | None = None,
    *,
    tags_suffix: Literal["tags", "cleaned_tags"] = "tags",
) -> dict[str, Path]:
    """Write ``root/{split}.{ids,words[,tags]}.txt`` (one line each, ``\\n`` ends every line).

    Raises ValueError on lengths that differ, a word/tag count mismatch, or a token with
    whitespace (it would not read back). Returns the paths by kind.
    """
    if len(ids) != len(words) or (tags is not None and len(tags) != len(ids)):
        raise ValueError("ids, words and tags must have the same number of lines")
    columns: dict[str, Sequence[Sequence[str]]] = {"ids": [[i] for i in ids], "words": words}
    if tags is not None:
        for i, (w, t) in enumerate(zip(words, tags, strict=True)):
            if len(w) != len(t):
                raise ValueError(f"line {i + 1}: {len(t)} tags for {len(w)} words")
        columns[tags_suffix] = tags
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, lines in columns.items():
        for i, line in enumerate(lines):
            if any(not tok or len(tok.split()) != 1 or tok != tok.strip() for tok in line):
                raise ValueError(f"{kind} line {i + 1}: empty token or token with whitespace")
        path = split_file(root, split, kind)
        write_text(path, "".join(" ".join(line) + "\n" for line in lines))
        out[kind] = path
    return out


def read_sequence_labels_at(location: str | os.PathLike[str], **kwargs: object) -> SequenceLabels:
    """Read from a prefix ``root/{split}`` (e.g. ``labels/val_coco``) or a folder with one split.

    Keyword arguments go to :func:`read_sequence_labels`.
    """
    p = Path(location)
    if p.is_dir():
        splits = list_splits(p)
        if len(splits) != 1:
            raise InputError(f"expected one split in this folder, found {splits or 'none'}", str(p),
                             hint="pass a prefix such as DIR/val_coco")
        return read_sequence_labels(p, splits[0], **kwargs)  # type: ignore[arg-type]
    return read_sequence_labels(p.parent, p.name, **kwargs)  # type: ignore[arg-type]

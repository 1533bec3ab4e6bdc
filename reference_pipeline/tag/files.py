"""Reading TReCS word/tag files for the taggers: one narrative per line, space-separated tokens.

``*.words.txt`` holds lowercased, punctuation-free words; ``*.cleaned_tags.txt`` one COCO-Stuff
label per word on the same line; ``*.ids.txt`` ``<image id>_<annotator>`` per line.
Mismatches are :class:`InputError` with file and line (1-based).
"""

from __future__ import annotations

from pathlib import Path

from trecs_eval.errors import InputError


def read_token_lines(path: str | Path, field: str) -> list[list[str]]:
    """Whitespace-split lines; an empty line is an error (every narrative has words)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=str(path), field=field)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason})", path=str(path), field=field) from err
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            raise InputError("empty line (expected at least one token)", path=str(path), line=number,
                             field=field)
        rows.append(tokens)
    if not rows:
        raise InputError("file is empty", path=str(path), field=field)
    return rows


def read_words_and_tags(words_path: str | Path, tags_path: str | Path) -> tuple[list[list[str]],
                                                                                 list[list[str]]]:
    """Parallel word and tag sequences; every tag line must have as many tokens as its word line."""
    words = read_token_lines(words_path, "words")
    tags = read_token_lines(tags_path, "tags")
    if len(words) != len(tags):
        raise InputError(f"{len(tags)} lines but the words file {words_path} has {len(words)}",
                         path=str(tags_path), line=min(len(words), len(tags)) + 1, field="tags")
    for number, (word_row, tag_row) in enumerate(zip(words, tags, strict=True), start=1):
        if len(word_row) != len(tag_row):
            raise InputError(f"{len(tag_row)} tags but {len(word_row)} words on this line",
                             path=str(tags_path), line=number, field="tags")
    return words, tags


def read_image_ids(ids_path: str | Path, expected_lines: int | None = None) -> list[str]:
    """Image id per narrative: the part of ``<image id>_<annotator>`` before the last underscore."""
    rows = read_token_lines(ids_path, "ids")
    image_ids = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 1 or "_" not in row[0]:
            raise InputError(f"expected one '<image id>_<annotator>' token, got {' '.join(row)!r}",
                             path=str(ids_path), line=number, field="ids")
        image_ids.append(row[0].rsplit("_", 1)[0])
    if expected_lines is not None and len(image_ids) != expected_lines:
        raise InputError(f"{len(image_ids)} ids but {expected_lines} narratives", path=str(ids_path),
                         field="ids")
    return image_ids

"""TReCS sequence-label files: the real released files and malformed ones."""

from __future__ import annotations

from collections import Counter

import pytest

from trecs_eval.data.coco_stuff import NAME_TO_ID
from trecs_eval.data.sequence_labels import (
    list_splits,
    read_sequence_labels,
    split_file,
    write_sequence_labels,
)
from trecs_eval.errors import InputError

# the released val files' sizes (the full files only: the vendored subset keeps fewer lines)
LN_COCO_VAL_LINES = 8570
LN_OI_VAL_LINES = 1000
LN_COCO_VAL_DISTINCT_TAGS = 162


def _lines(path) -> list[str]:
    """The file's lines, counted independently of the reader (newline-separated, UTF-8)."""
    return path.read_bytes().decode("utf-8").splitlines()


def test_real_ln_coco_val(sequence_labels_dir):
    labels = read_sequence_labels(sequence_labels_dir, "val_coco")
    ids = _lines(sequence_labels_dir / "val_coco.ids.txt")
    assert len(labels) == len(ids) and labels.ids == tuple(i.strip() for i in ids)
    assert labels.tags_file == "cleaned_tags"
    assert all(len(w) == len(t) for w, t in zip(labels.words, labels.tags, strict=True))
    counts = labels.label_counts()
    raw_tags = (sequence_labels_dir / "val_coco.cleaned_tags.txt").read_text(encoding="utf-8").split()
    assert counts == Counter(raw_tags)
    assert set(counts) <= set(NAME_TO_ID)
    # independent count straight from the file, to check nothing was dropped or re-split
    raw = (sequence_labels_dir / "val_coco.words.txt").read_text(encoding="utf-8")
    assert labels.n_words == len(raw.split())


def test_real_ln_openimages_val_words_only(sequence_labels_dir):
    labels = read_sequence_labels(sequence_labels_dir, "val_oi")
    assert len(labels) == len(_lines(sequence_labels_dir / "val_oi.ids.txt"))
    assert labels.tags is None
    assert list_splits(sequence_labels_dir) == ["val_coco", "val_oi"]  # train_coco has ids only


@pytest.mark.full_labels
def test_released_val_files_have_their_published_sizes(full_sequence_labels_dir):
    coco = read_sequence_labels(full_sequence_labels_dir, "val_coco")
    assert len(coco) == LN_COCO_VAL_LINES
    assert len(coco.label_counts()) == LN_COCO_VAL_DISTINCT_TAGS
    assert len(read_sequence_labels(full_sequence_labels_dir, "val_oi")) == LN_OI_VAL_LINES


def test_odd_characters_are_kept_as_released(sequence_labels_dir):
    labels = read_sequence_labels(sequence_labels_dir, "val_coco")
    tokens = {w for line in labels.words for w in line}
    assert {"<unk>", "it's"} <= tokens
    assert any("´" in w for w in tokens) and any("¨" in w for w in tokens)


def _write(root, name, text):
    (root / name).write_text(text, encoding="utf-8")


def test_round_trip(tmp_path):
    ids, words, tags = ["1_2", "3_4"], [["a", "dog"], ["sky"]], [["dog", "dog"], ["sky-other"]]
    paths = write_sequence_labels(tmp_path, "toy", ids, words, tags)
    assert sorted(paths) == ["ids", "tags", "words"]
    back = read_sequence_labels(tmp_path, "toy")
    assert back.ids == tuple(ids) and back.words == (("a", "dog"), ("sky",))
    assert back.tags == (("dog", "dog"), ("sky-other",)) and back.tags_file == "tags"


def test_count_mismatch_names_line(tmp_path):
    _write(tmp_path, "s.ids.txt", "1_1\n2_2\n")
    _write(tmp_path, "s.words.txt", "a dog\nthe sky is blue\n")
    _write(tmp_path, "s.tags.txt", "dog dog\nsky-other sky-other\n")
    with pytest.raises(InputError) as info:
        read_sequence_labels(tmp_path, "s")
    assert info.value.path == str(split_file(tmp_path, "s", "tags"))
    assert info.value.line == 2 and "2 tags for 4 words" in str(info.value)


def test_different_lengths_names_file_and_line(tmp_path):
    _write(tmp_path, "s.ids.txt", "1_1\n2_2\n3_3\n")
    _write(tmp_path, "s.words.txt", "a\nb\n")
    with pytest.raises(InputError) as info:
        read_sequence_labels(tmp_path, "s")
    assert info.value.path.endswith("s.words.txt") and info.value.line == 3
    assert "2 lines, but s.ids.txt has 3" in str(info.value)


@pytest.mark.parametrize(
    ("ids", "tags", "line", "message"),
    [
        ("1_1\n1_1\n", "dog\ndog\n", 2, "duplicate item id"),
        ("1_1\n\n", "dog\ndog\n", 2, "expected one item id"),
        ("1_1\n2_2\n", "dog\nskyy-other\n", 2, "did you mean 'sky-other'"),
    ],
)
def test_bad_ids_and_labels(tmp_path, ids, tags, line, message):
    _write(tmp_path, "s.ids.txt", ids)
    _write(tmp_path, "s.words.txt", "a\nb\n")
    _write(tmp_path, "s.cleaned_tags.txt", tags)
    with pytest.raises(InputError, match=message) as info:
        read_sequence_labels(tmp_path, "s")
    assert info.value.line == line


def test_missing_words_file_and_non_utf8(tmp_path):
    _write(tmp_path, "s.ids.txt", "1_1\n")
    with pytest.raises(InputError, match="file not found"):
        read_sequence_labels(tmp_path, "s")
    (tmp_path / "s.words.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(InputError, match="UTF-8") as info:
        read_sequence_labels(tmp_path, "s")
    assert info.value.line == 1


def test_writer_rejects_mismatch(tmp_path):
    with pytest.raises(ValueError, match="line 1"):
        write_sequence_labels(tmp_path, "s", ["1_1"], [["a", "b"]], [["dog"]])
    with pytest.raises(ValueError, match="whitespace"):
        write_sequence_labels(tmp_path, "s", ["1_1"], [["a b"]])

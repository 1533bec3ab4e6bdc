"""``data prepare``: missing downloads are named before any work, options are checked, and the
helpers (subset restriction, released-image linking, words/tags reading) keep their promises."""

from __future__ import annotations

import pytest

from trecs_eval.data.evalset import EvalItem, EvalSet
from trecs_eval.data.narratives import Narrative
from trecs_eval.data.prepare import PrepareOptions, prepare
from trecs_eval.data.prepare_steps import link_released, read_words_and_tags, restrict
from trecs_eval.errors import InputError, UnknownNameError


def test_missing_downloads_are_named_with_the_command_that_fetches_them(tmp_path):
    with pytest.raises(InputError, match=r"coco_val_localized_narratives\.jsonl") as err:
        prepare("ln-coco", tmp_path, PrepareOptions(progress=False), echo=lambda s: None)
    assert "trecs-eval data download ln-coco-val" in str(err.value)
    assert not (tmp_path / "prepared.json").exists()  # nothing started


def test_unknown_benchmark_and_tagger(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'ln-coco'"):
        prepare("ln-cocoo", tmp_path, echo=lambda s: None)
    with pytest.raises(UnknownNameError, match="did you mean 'neural'"):
        prepare("ln-coco", tmp_path, PrepareOptions(tagger="nural"), echo=lambda s: None)


def _item(item_id: str) -> EvalItem:
    image, annotator = item_id.split("_")
    return EvalItem(Narrative("mscoco_val2017", image, int(annotator), "a dog"))


def test_restrict_keeps_split_order_and_reports_ids_without_narrative():
    evalset = EvalSet("x", (_item("1_1"), _item("2_1"), _item("3_1")))
    out = restrict(evalset, ["3_1", "9_9", "1_1"])
    assert [i.item_id for i in out] == ["3_1", "1_1"]
    assert [(e.item_id, e.what) for e in out.missing.entries] == [("9_9", "narrative")]


def test_link_released_finds_files_in_any_folder_and_rebuilds_its_output(tmp_path):
    source = tmp_path / "tar" / "deep" / "coco"
    source.mkdir(parents=True)
    (source / "1_1.png").write_bytes(b"one")
    (source / "other.png").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.png").write_bytes(b"old")
    summary = link_released(tmp_path / "tar", ["1_1", "2_2"], out, progress=False)
    assert summary == {"released images": 1, "without": 1}
    assert sorted(p.name for p in out.iterdir()) == ["1_1.png"]
    assert (out / "1_1.png").read_bytes() == b"one"


def test_words_and_tags_must_align(tmp_path):
    (tmp_path / "w.txt").write_text("a dog\nthe sky\n")
    (tmp_path / "t.txt").write_text("dog dog\nsky-other\n")
    with pytest.raises(InputError, match=r"t.txt:2: 1 tags for 2 words"):
        read_words_and_tags(tmp_path / "w.txt", tmp_path / "t.txt")
    (tmp_path / "t.txt").write_text("dog dog\n")
    with pytest.raises(InputError, match=r"1 lines but w\.txt has 2"):
        read_words_and_tags(tmp_path / "w.txt", tmp_path / "t.txt")

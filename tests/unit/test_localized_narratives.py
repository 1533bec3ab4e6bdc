"""Localized Narratives JSONL reader and writer."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from trecs_eval.data.localized_narratives import (
    OFFICIAL_FILES,
    iter_narratives,
    narrative_files,
    narrative_to_dict,
    read_narratives,
    write_narratives_jsonl,
)
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint
from trecs_eval.errors import InputError


def record(image_id: str = "137576", annotator_id: int = 93, **overrides) -> dict:
    rec = {
        "dataset_id": "mscoco_val2017",
        "image_id": image_id,
        "annotator_id": annotator_id,
        "caption": "In this image there are cows.",
        "timed_caption": [
            {"utterance": "In this image", "start_time": 0.0, "end_time": 0.8},
            {"utterance": "there are cows.", "start_time": 0.8, "end_time": 2.0},
        ],
        "traces": [[{"x": 0.1, "y": -0.02, "t": 0.1}, {"x": 0.5, "y": 0.5, "t": 1.0}],
                   [{"x": 1.03, "y": 0.9, "t": 1.9}]],
        "voice_recording": "coco_val/coco_val_137576_93.ogg",
    }
    rec.update(overrides)
    return rec


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(data)
    return path


def test_reads_official_record(tmp_path):
    path = write_lines(tmp_path / OFFICIAL_FILES["coco_val"], [json.dumps(record())])
    (n,) = read_narratives(path).narratives
    assert n.item_id == "137576_93"
    assert n.timed_caption[1] == TimedUtterance("there are cows.", 0.8, 2.0)
    assert n.traces[1][0] == TracePoint(1.03, 0.9, 1.9)
    assert n.voice_recording.endswith(".ogg")


def test_gzip_detected_by_content_and_round_trip(tmp_path):
    narratives = [Narrative("toyworld", f"img{i}", i, f"a dog number {i}",
                            (TimedUtterance("a dog", 0.0, 1.0),),
                            ((TracePoint(0.1 * i, 0.2, 0.5),),)) for i in range(5)]
    for name in ("n.jsonl", "n.jsonl.gz"):
        path = write_narratives_jsonl(tmp_path / name, narratives)
        assert read_narratives(path).narratives == narratives
    with gzip.open(tmp_path / "n.jsonl.gz", "rt") as handle:
        assert json.loads(handle.readline()) == narrative_to_dict(narratives[0])


def test_streaming_does_not_read_past_the_first_record(tmp_path):
    # A malformed line far down must not be touched when only the first record is consumed.
    path = write_lines(tmp_path / "a.jsonl", [json.dumps(record()), "{broken"])
    first = next(iter_narratives(path))
    assert first.image_id == "137576"


BAD_LINES = [
    ("{not json", None, "bad JSON"),
    (json.dumps(["a list"]), None, "JSON object"),
    (json.dumps({k: v for k, v in record().items() if k != "caption"}), "caption", "missing"),
    (json.dumps(record(annotator_id="93")), "annotator_id", "integer"),
    (json.dumps(record(annotator_id=True)), "annotator_id", "integer"),
    (json.dumps(record(caption="   ")), "caption", "empty caption"),
    (json.dumps(record(traces=[[{"x": float("nan"), "y": 0, "t": 0}]])), "traces[0][0].x", "finite"),
    (json.dumps(record(traces=[[{"x": 0, "y": float("inf"), "t": 0}]])), "traces[0][0].y", "finite"),
    (json.dumps(record(traces=[[{"x": 0, "y": 0, "t": 10**400}]])), "traces[0][0].t", "finite"),
    (json.dumps(record(traces=[[{"x": 0, "y": 0, "t": 1}, {"x": 0, "y": 0}]])), "traces[0][1].t",
     "missing"),
    (json.dumps(record(traces=[[{"x": "0", "y": 0, "t": 0}]])), "traces[0][0].x", "number"),
    (json.dumps(record(traces={"x": 0})), "traces", "list"),
    (json.dumps(record(traces=[[{"x": 0, "y": True, "t": 0}]])), "traces[0][0].y", "got bool"),
    (json.dumps(record(traces=[["not a point"]])), "traces[0][0]", "expected an object"),
    (json.dumps(record(timed_caption=[{"utterance": "a", "start_time": 2.0, "end_time": 1.0}])),
     "timed_caption[0]", "start_time 2.0 > end_time 1.0"),
    (json.dumps(record(timed_caption=[{"utterance": 5, "start_time": 0, "end_time": 1}])),
     "timed_caption[0].utterance", "string"),
    (json.dumps(record(image_id="../etc")), "image_id", "file name"),
    (json.dumps(record(image_id="a/b")), "image_id", "file name"),
    (json.dumps(record(image_id="a\\b")), "image_id", "file name"),
    (json.dumps(record(image_id="a\x00b")), "image_id", "file name"),
    (json.dumps(record(image_id="..")), "image_id", "file name"),
    (json.dumps(record(image_id=None)), "image_id", "string"),
    (b'{"caption": "caf\xe9"}', None, "UTF-8"),
]


@pytest.mark.parametrize(("line", "field", "message"), BAD_LINES)
def test_malformed_line_names_file_line_field(tmp_path, line, field, message):
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps(record("1")), "", line])
    with pytest.raises(InputError) as info:
        read_narratives(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 3, field)
    assert message in str(err)
    assert str(err).startswith(f"{path}:3")


def test_duplicate_item_id_is_an_error_even_across_files(tmp_path):
    a = write_lines(tmp_path / "a.jsonl", [json.dumps(record("1", 1))])
    b = write_lines(tmp_path / "b.jsonl", [json.dumps(record("2", 1)), json.dumps(record("1", 1))])
    with pytest.raises(InputError, match=r"duplicate item id '1_1' \(first at .*a.jsonl:1\)") as info:
        read_narratives([a, b])
    assert (info.value.path, info.value.line) == (str(b), 2)
    # same image, another annotator: a different item
    c = write_lines(tmp_path / "c.jsonl", [json.dumps(record("1", 1)), json.dumps(record("1", 2))])
    assert [n.item_id for n in read_narratives(c).narratives] == ["1_1", "1_2"]


def test_skip_records_which_lines_and_warns(tmp_path, caplog):
    lines = [json.dumps(record("1")), "{bad", json.dumps(record("2", caption="")),
             json.dumps(record("3")), json.dumps(record("1"))]
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    with caplog.at_level(logging.WARNING):
        result = read_narratives(path, on_error="skip")
    assert [n.image_id for n in result.narratives] == ["1", "3"]
    assert [(s.line, s.field) for s in result.skipped] == [(2, None), (3, "caption"), (5, "image_id")]
    assert "skipped 3 malformed line(s)" in caplog.text
    with pytest.raises(ValueError, match="skipped"):
        list(iter_narratives(path, on_error="skip"))  # nowhere to record: refuse, don't go silent


def test_integer_image_id_becomes_string(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [json.dumps(record(image_id=397133))])
    assert read_narratives(path).narratives[0].item_id == "397133_93"


def test_directory_of_shards(tmp_path):
    name = OFFICIAL_FILES["coco_train"]
    for shard in range(4):
        write_lines(tmp_path / name.format(shard=shard), [json.dumps(record(str(shard)))])
    assert [n.image_id for n in read_narratives(tmp_path).narratives] == ["0", "1", "2", "3"]
    (tmp_path / name.format(shard=2)).unlink()
    with pytest.raises(InputError, match=r"shards \[2\] .* are missing"):
        narrative_files(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_narratives(tmp_path / "nope.jsonl")


def test_writer_refuses_nan(tmp_path):
    bad = Narrative("d", "1", 1, "cap", (), ((TracePoint(float("nan"), 0.0, 0.0),),))
    with pytest.raises(ValueError):
        write_narratives_jsonl(tmp_path / "x.jsonl", [bad])
    assert not (tmp_path / "x.jsonl").exists()


def test_truncated_gzip_is_an_input_error_naming_the_line(tmp_path):
    narratives = [Narrative("d", str(i), 1, "a caption " * 50) for i in range(200)]
    whole = write_narratives_jsonl(tmp_path / "n.jsonl.gz", narratives).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="cannot read past this line") as info:
        read_narratives(cut, on_error="skip")
    assert info.value.path == str(cut) and info.value.line > 1


def test_reading_streams_memory_stays_far_below_file_size(tmp_path):
    import tracemalloc

    caption = "in this image we can see a dog on the grass " * 250  # ~11 kB a line
    path = write_narratives_jsonl(tmp_path / "big.jsonl",
                                  (Narrative("d", str(i), 1, caption) for i in range(300)))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_narratives(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 300
    assert peak < size / 10, (peak, size)  # a whole-file read would need at least `size`

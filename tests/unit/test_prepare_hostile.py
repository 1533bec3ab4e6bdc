"""``data prepare`` against hostile inputs: COCO annotation JSON that parses but has the wrong shape
(one line naming file and field, exit 2, never handed to pycocotools), compressed RLE strings
checked against an independent run-length reference, and an evaluation set that matches nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from reference_pipeline.bank import build_bank
from trecs_eval.cli import main
from trecs_eval.data.coco_annotations import rle_string_counts
from trecs_eval.data.evalset import EvalItem, EvalSet
from trecs_eval.data.narratives import Narrative
from trecs_eval.data.prepare_steps import Layout, checked_subset, ln_openimages_steps
from trecs_eval.errors import InputError

SQUARE = [[0, 0, 10, 0, 10, 10, 0, 10]]


def _doc(**changes: object) -> dict:
    """A valid one-image, one-annotation COCO document with ``changes`` applied."""
    image = {"id": 7, "file_name": "a.png", "width": 20, "height": 10}
    ann = {"id": 1, "image_id": 7, "category_id": 1, "segmentation": SQUARE}
    doc = {"images": [image], "categories": [{"id": 1, "name": "person"}], "annotations": [ann]}
    for key, value in changes.items():
        if key.startswith("image."):
            image[key[6:]] = value
        elif key.startswith("ann."):
            ann[key[4:]] = value
        else:
            doc[key] = value
    return doc


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(mask.shape), "counts": rle["counts"].decode("ascii")}


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"annotations": {"0": {}}}, "annotations", "must be a list"),
    ({"annotations": ["not an object"]}, "annotations[0]", "must be an object"),
    ({"ann.category_id": "person"}, "annotations[0].category_id", "must be an integer"),
    ({"ann.category_id": "1"}, "annotations[0].category_id", "must be an integer"),
    ({"image.height": -10}, "images[0].height", "must be an integer in 1..65536"),
    ({"image.width": 10**9}, "images[0].width", "must be an integer in 1..65536"),
    ({"images": [[7, "a.png"]]}, "images[0]", "must be an object"),
    ({"ann.segmentation": [[float("nan"), 0, 10, 0, 10, 10]]}, "annotations[0].segmentation[0]", "NaN"),
    ({"ann.segmentation": [[1e12, 0, 10, 0, 10, 10]]}, "annotations[0].segmentation[0]", "far outside"),
    ({"ann.segmentation": [[0, 0, 10, 0]]}, "annotations[0].segmentation[0]", "even number"),
    ({"ann.segmentation": [[0, 0, 10]]}, "annotations[0].segmentation[0]", "even number"),
    ({"ann.segmentation": [["0", 0, 10, 0, 10, 10]]}, "annotations[0].segmentation[0]", "numbers"),
    ({"ann.segmentation": []}, "annotations[0].segmentation", "empty polygon"),
    ({"ann.segmentation": {"size": [10, 20], "counts": [-5, 205]}}, "annotations[0].segmentation.counts",
     "integers >= 0"),
    ({"ann.segmentation": {"size": [10, 20], "counts": [5, 10]}}, "annotations[0].segmentation.counts",
     "add up to 15"),
    ({"ann.segmentation": {"size": [99, 99], "counts": "PPb1"}}, "annotations[0].segmentation.size",
     "not the image's"),
    ({"ann.segmentation": {"size": [10, 20], "counts": "~~~~"}}, "annotations[0].segmentation.counts",
     "unreadable"),
    ({"ann.segmentation": _rle(np.ones((30, 30), bool)) | {"size": [10, 20]}},
     "annotations[0].segmentation.counts", "add up to 900"),
])
def test_wrong_shaped_coco_json_names_file_and_field(tmp_path, changes, field, says):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_doc(**changes)))  # json writes NaN as the token NaN, as a hostile file would
    with pytest.raises(InputError, match=says) as info:
        build_bank(path, tmp_path)
    assert info.value.field == field and str(path) in str(info.value)


def test_a_text_category_id_in_the_category_list_is_refused(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(_doc(categories=[{"id": "1", "name": "person"}])))
    with pytest.raises(InputError, match="no integer id") as info:
        build_bank(tmp_path / "a.json", tmp_path)
    assert info.value.field == "categories[0].id"


def test_an_ids_file_that_is_not_utf8_names_file_and_line(tmp_path):
    layout = Layout(tmp_path)
    narratives = layout.narratives / "open_images_validation_localized_narratives.jsonl"
    narratives.parent.mkdir(parents=True)
    narratives.write_text("")
    (tmp_path / "openimages" / "validation").mkdir(parents=True)
    layout.labels.mkdir(parents=True)
    (layout.labels / "val_oi.ids.txt").write_bytes(b"abc_1\n\xff\xfe_2\n")
    run = ln_openimages_steps(layout, progress=False)[0][5]
    with pytest.raises(InputError, match=r"val_oi\.ids\.txt:2: not valid UTF-8"):
        run()


def test_a_top_level_array_is_refused(tmp_path):
    (tmp_path / "a.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object, got list"):
        build_bank(tmp_path / "a.json", tmp_path)


def test_cli_gives_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_doc(**{"ann.category_id": "person"})))
    code = main(["-q", "pipeline", "build-bank", "--annotations", str(path), "--images", str(tmp_path),
                 "--out", str(tmp_path / "bank")])
    err = capsys.readouterr().err
    assert code == 2 and "annotations[0].category_id" in err and "Traceback" not in err


def test_valid_polygon_rle_and_compressed_rle_still_build(tmp_path):
    square = np.zeros((10, 20), bool)
    square[2:5, 3:9] = True
    doc = _doc()
    doc["annotations"] += [
        {"id": 2, "image_id": 7, "category_id": 1, "segmentation": _rle(square)},
        {"id": 3, "image_id": 7, "category_id": 1,
         "segmentation": {"size": [10, 20], "counts": [30, 10, 160]}},  # uncompressed, column-major runs
    ]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    bank = build_bank(tmp_path / "a.json", tmp_path)
    assert [m.area for m in bank.masks] == [100, 18, 10]


def _runs(mask: np.ndarray) -> list[int]:
    """Run lengths of a mask in column-major order, starting with a run of zeros (COCO's RLE)."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


def test_compressed_rle_decoder_agrees_with_the_masks_own_runs():
    rng = np.random.default_rng(0)
    for trial in range(200):
        height, width = rng.integers(1, 40, 2)
        mask = rng.random((height, width)) < rng.random()
        if trial % 7 == 0:
            mask[:] = trial % 2 == 0  # all one value: a single run (or a zero run then one)
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]
        assert rle_string_counts(encoded).tolist() == _runs(mask), trial


def _item(item_id: str) -> EvalItem:
    image, annotator = item_id.split("_")
    return EvalItem(Narrative("open_images_validation", image, int(annotator), "a cat"))


def test_an_evaluation_set_that_matches_nothing_is_an_error(tmp_path):
    full = EvalSet("x", (_item("a_1"), _item("b_1")))
    says = r"none of the 2 ids of ids\.txt \(first 'y_1'\) has a narrative among its 2"
    with pytest.raises(InputError, match=says):
        checked_subset(full, ["y_1", "z_1"], tmp_path / "ids.txt", tmp_path / "n.jsonl")
    with pytest.raises(InputError, match="holds no item ids"):
        checked_subset(full, [], tmp_path / "ids.txt", tmp_path / "n.jsonl")
    assert len(checked_subset(full, ["y_1", "b_1"], tmp_path / "ids.txt", tmp_path / "n.jsonl")) == 1


def test_the_openimages_evalset_step_refuses_ids_of_another_split(tmp_path):
    layout = Layout(tmp_path)
    narratives = layout.narratives / "open_images_validation_localized_narratives.jsonl"
    narratives.parent.mkdir(parents=True)
    record = {"dataset_id": "open_images_validation", "image_id": "abc", "annotator_id": 1,
              "caption": "a cat", "timed_caption": [], "traces": []}
    narratives.write_text(json.dumps(record) + "\n")
    (tmp_path / "openimages" / "validation").mkdir(parents=True)
    layout.labels.mkdir(parents=True)
    (layout.labels / "val_oi.ids.txt").write_text("zzz_1\n")
    key, *_, run, _hint = ln_openimages_steps(layout, progress=False)[0]
    assert key == "ln-openimages/evalset"
    with pytest.raises(InputError, match="none of the 1 ids"):
        run()
    assert not (tmp_path / "ln_openimages" / "evalset.json").exists()


def test_layout_paths_are_under_the_root(tmp_path):
    assert Layout(tmp_path).labels == Path(tmp_path) / "trecs_sequence_labels"

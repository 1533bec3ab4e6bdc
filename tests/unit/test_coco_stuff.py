"""COCO-Stuff label table, PNG label maps and COCO-format annotations (pycocotools)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from trecs_eval.data.coco_stuff import (
    ID_TO_NAME,
    NAME_TO_ID,
    CocoAnnotations,
    coco_categories,
    label_id,
    label_name,
    masks_to_coco_annotations,
    read_instance_map,
    read_label_map,
    write_instance_map,
    write_label_map,
)
from trecs_eval.data.sequence_labels import read_sequence_labels
from trecs_eval.errors import InputError

N_LABELS = 182  # COCO-Stuff labels.txt: 91 thing ids + 91 stuff ids


def test_every_ln_coco_val_tag_maps_to_an_id(sequence_labels_dir):
    labels = read_sequence_labels(sequence_labels_dir, "val_coco", validate_labels=False)
    tags = set(labels.label_counts())
    # every tag of the file, read independently of the reader
    raw = (sequence_labels_dir / "val_coco.cleaned_tags.txt").read_text(encoding="utf-8")
    assert tags == set(raw.split())
    assert {t for t in tags if t not in NAME_TO_ID} == set()
    assert all(ID_TO_NAME[label_id(t)] == t for t in tags)


def test_table_fixed_points():
    # spot checks from COCO-Stuff labels.txt
    assert len(ID_TO_NAME) == N_LABELS
    assert (label_id("person"), label_id("toothbrush"), label_id("banner")) == (1, 90, 92)
    assert (label_id("sky other"), label_id("wood")) == (157, 182)
    assert label_name(0) == label_name(255) == "unlabeled"
    with pytest.raises(KeyError, match="did you mean 'grass'"):
        label_id("grasss")


def test_label_map_round_trip_and_zero_based(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 92, 157, 182, 255], size=(12, 9)).astype(np.uint8)
    path = write_label_map(tmp_path / "a.png", labels)
    np.testing.assert_array_equal(read_label_map(path), labels)
    # stuffthingmaps PNGs store id - 1, 255 unlabeled
    released = np.where(labels == 255, 255, labels.astype(int) - 1).clip(0, 255).astype(np.uint8)
    released[labels == 0] = 255
    Image.fromarray(released).save(tmp_path / "b.png")
    expected = np.where(labels == 0, 255, labels)
    np.testing.assert_array_equal(read_label_map(tmp_path / "b.png", zero_based=True), expected)


def test_label_map_rejects_rgb_and_non_ids(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="mode 'RGB'") as info:
        read_label_map(tmp_path / "rgb.png")
    assert info.value.path == str(tmp_path / "rgb.png")
    Image.fromarray(np.full((3, 3), 200, np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(InputError, match=r"\[200\]"):
        read_label_map(tmp_path / "bad.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read"):
        read_label_map(tmp_path / "junk.png")


def test_instance_map_16_bit_round_trip(tmp_path):
    inst = np.arange(20, dtype=np.int64).reshape(4, 5) * 3000
    np.testing.assert_array_equal(read_instance_map(write_instance_map(tmp_path / "i.png", inst)), inst)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    labels = np.full((40, 50), 157, np.uint8)  # sky
    labels[25:, :] = 124  # grass
    labels[0:3, 0:3] = 0  # unlabeled corner
    inst = np.zeros_like(labels, np.int32)
    labels[10:30, 5:15], inst[10:30, 5:15] = 18, 1  # dog
    labels[12:20, 30:45], inst[12:20, 30:45] = 18, 2  # a second dog
    return labels, inst


def test_masks_to_coco_round_trip_through_reader(tmp_path):
    labels, inst = _scene()
    anns = masks_to_coco_annotations(labels, inst, image_id=7)
    assert sorted(a["category_id"] for a in anns) == [18, 18, 124, 157]
    assert sum(a["area"] for a in anns) == int((labels != 0).sum())
    dog = next(a for a in anns if a["area"] == 200)
    assert dog["bbox"] == [5.0, 10.0, 10.0, 20.0]
    doc = {"images": [{"id": 7, "width": 50, "height": 40, "file_name": "7.png"}],
           "annotations": anns, "categories": coco_categories()}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    maps = CocoAnnotations(tmp_path / "a.json").maps(7)
    np.testing.assert_array_equal(maps.labels, labels)
    # instance ids are renumbered, but the partition into instances is the same
    for k in (1, 2):
        assert len(np.unique(maps.instances[inst == k])) == 1


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_polygons_match_pycocotools_and_things_paint_over_stuff(tmp_path):
    polygon = [10, 10, 30, 10, 30, 25, 10, 25]  # x, y pairs
    doc = {
        "images": [{"id": 1, "width": 40, "height": 32}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "segmentation": [polygon], "area": 300},
            {"id": 2, "image_id": 1, "category_id": 149, "area": 1280,
             "segmentation": {"size": [32, 40], "counts": [0, 1280]}},  # uncompressed RLE: all road
        ],
    }
    (tmp_path / "p.json").write_text(json.dumps(doc))
    maps = CocoAnnotations(tmp_path / "p.json").maps(1)
    expected_car = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], 32, 40)))
    np.testing.assert_array_equal(maps.labels == 3, expected_car.astype(bool))
    assert set(np.unique(maps.labels)) == {3, 149}  # car over road, though road came later
    # the polygon covers the same pixels PIL draws for it (independent rasterizer, edges aside)
    drawn = Image.new("L", (40, 32))
    ImageDraw.Draw(drawn).polygon(polygon, fill=1)
    assert np.abs(np.asarray(drawn).astype(int) - expected_car).sum() <= 2 * (20 + 15)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"images": []}, "annotations"),
        ({"images": [{"id": "1", "width": 2, "height": 2}], "annotations": []}, "images[0]"),
        ({"images": [{"id": 1, "width": 2, "height": 2}],
          "annotations": [{"image_id": 1, "category_id": 999, "segmentation": []}]},
         "annotations[0].category_id"),
        ({"images": [{"id": 1, "width": 2, "height": 2}],
          "annotations": [{"image_id": 5, "category_id": 1, "segmentation": []}]},
         "annotations[0].image_id"),
    ],
)
def test_bad_annotation_json_names_field(tmp_path, doc, field):
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        CocoAnnotations(tmp_path / "x.json")
    assert info.value.field == field and info.value.path == str(tmp_path / "x.json")

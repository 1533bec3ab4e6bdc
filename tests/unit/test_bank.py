"""Mask bank: built from COCO-format annotations, masks decode exactly, save/load round trip, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reference_pipeline.bank import INDEX_NAME, MaskBank, build_bank
from tests.trecs_scene import scene_maps, write_bank_dir
from trecs_eval.cli import main
from trecs_eval.data.coco_stuff import NAME_TO_ID
from trecs_eval.errors import InputError, TrecsEvalError

SCENES = [
    [("sky-other", (0, 0, 64, 32)), ("grass", (0, 32, 64, 64)), ("dog", (8, 36, 24, 52))],
    [("sky-other", (0, 0, 64, 20)), ("sea", (0, 20, 64, 64)), ("boat", (40, 30, 60, 40))],
]


@pytest.fixture()
def bank_dir(tmp_path):
    return write_bank_dir(tmp_path / "train", SCENES)


def test_bank_holds_label_bags_and_exact_masks(bank_dir, tmp_path):
    bank = build_bank(bank_dir / "annotations.json", bank_dir / "images", tmp_path / "bank")
    assert len(bank) == 2
    assert bank.labels_of(0) == tuple(sorted(NAME_TO_ID[n] for n in ("sky-other", "grass", "dog")))
    assert bank.labels_of(1) == tuple(sorted(NAME_TO_ID[n] for n in ("sky-other", "sea", "boat")))
    for i, scene in enumerate(SCENES):
        _, instances = scene_maps(scene, 64)
        for m in bank.images[i].mask_indices:
            info = bank.masks[m]
            # Each box is one instance; its visible pixels are exactly where the instance map says.
            expected = [k for k, (name, _) in enumerate(scene, start=1) if NAME_TO_ID[name] == info.label]
            assert np.array_equal(bank.mask(m), np.isin(instances, expected))
            assert info.area == int(np.isin(instances, expected).sum())
    dog = bank.masks_with_label(0, NAME_TO_ID["dog"])
    assert len(dog) == 1 and bank.masks[dog[0]].bbox == (8, 36, 16, 16)
    assert bank.image_path(1).name == "1.png" and bank.image_path(1).is_file()


def test_save_load_round_trip_and_resize(bank_dir, tmp_path):
    built = build_bank(bank_dir / "annotations.json", bank_dir / "images", tmp_path / "bank")
    loaded = MaskBank.load(tmp_path / "bank")
    assert loaded.images == built.images and loaded.masks == built.masks
    assert loaded.images_dir == built.images_dir and loaded.source_sha256 == built.source_sha256
    m = loaded.masks_with_label(0, NAME_TO_ID["dog"])[0]
    big = loaded.mask(m, (128, 128))
    assert big.shape == (128, 128) and big.sum() == 4 * loaded.mask(m).sum()  # nearest 2× upsampling
    assert np.array_equal(big[::2, ::2], loaded.mask(m))


def test_polygon_segmentation_and_category_by_name(tmp_path):
    (tmp_path / "images").mkdir()
    doc = {
        "images": [{"id": 7, "file_name": "a.png", "width": 20, "height": 10}],
        "categories": [{"id": 5000, "name": "sky other"}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 5000,
                         "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], "area": 100,
                         "bbox": [0, 0, 10, 10]}],
    }
    (tmp_path / "a.json").write_text(json.dumps(doc))
    bank = build_bank(tmp_path / "a.json", tmp_path / "images")
    assert bank.labels_of(0) == (NAME_TO_ID["sky-other"],)
    assert bank.mask(0).shape == (10, 20) and bank.mask(0)[:, :10].all() and not bank.mask(0)[:, 11:].any()


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"images": [], "annotations": []}, "categories"),  # no categories key
        ({"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}], "annotations": [],
          "categories": [{"id": 1, "name": "person"}]}, "annotations"),  # nothing usable
        ({"images": [], "annotations": [], "categories": [{"id": 999, "name": "spaceship"}]}, "categories"),
        ({"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}],
          "annotations": [{"id": 3, "image_id": 1, "category_id": 1, "segmentation": 5}],
          "categories": [{"id": 1, "name": "person"}]}, "annotations[0].segmentation"),
    ],
)
def test_bad_annotations_name_file_and_field(tmp_path, doc, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        build_bank(path, tmp_path)
    assert str(path) in str(info.value) and info.value.field == field


def test_several_annotation_files_merge_by_image_id(bank_dir, tmp_path):
    doc = json.loads((bank_dir / "annotations.json").read_text())
    stuff, things = dict(doc), dict(doc)
    stuff["annotations"] = [a for a in doc["annotations"] if a["category_id"] >= 92]
    things["annotations"] = [a for a in doc["annotations"] if a["category_id"] < 92]
    things["images"] = doc["images"][::-1]  # another order: the first file's order wins
    (tmp_path / "stuff.json").write_text(json.dumps(stuff))
    (tmp_path / "things.json").write_text(json.dumps(things))
    merged = build_bank([tmp_path / "stuff.json", tmp_path / "things.json"], bank_dir / "images")
    single = build_bank(bank_dir / "annotations.json", bank_dir / "images")
    assert [merged.labels_of(i) for i in range(2)] == [single.labels_of(i) for i in range(2)]
    assert sorted(m.rle for m in merged.masks) == sorted(m.rle for m in single.masks)
    orphan = dict(things, images=[])
    (tmp_path / "orphan.json").write_text(json.dumps(orphan))
    with pytest.raises(InputError, match="no images list"):
        build_bank([tmp_path / "orphan.json"], bank_dir / "images")


def test_load_missing_bank_is_a_clear_error(tmp_path):
    with pytest.raises(TrecsEvalError, match="no mask bank"):
        MaskBank.load(tmp_path)


def test_cli_build_bank(bank_dir, tmp_path, capsys):
    out = tmp_path / "cli_bank"
    code = main(["pipeline", "build-bank", "--annotations", str(bank_dir / "annotations.json"),
                 "--images", str(bank_dir / "images"), "--out", str(out)])
    assert code == 0 and (out / INDEX_NAME).is_file()
    assert "2 images, 6 masks, 5 labels" in capsys.readouterr().out
    code = main(["pipeline", "build-bank", "--annotations", str(tmp_path / "missing.json"),
                 "--images", str(bank_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "missing.json" in err and "Traceback" not in err

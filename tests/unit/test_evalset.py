"""Evaluation sets: narratives joined with references, gold tags and gold segmentation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trecs_eval.data.coco_stuff import write_label_map
from trecs_eval.data.evalset import (
    build_evalset,
    load_toyworld,
    read_gold_segmentation,
    reference_image_path,
)
from trecs_eval.data.localized_narratives import write_narratives_jsonl
from trecs_eval.data.narratives import Narrative, TimedUtterance
from trecs_eval.data.sequence_labels import write_sequence_labels
from trecs_eval.errors import ConfigError, InputError


def narrative(image_id: str, annotator: int = 1, caption: str = "a dog on grass") -> Narrative:
    return Narrative("mscoco_val2017", image_id, annotator, caption,
                     (TimedUtterance(caption, 0.0, 1.0),), ())


def _png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, 0, 0)).save(path)


def test_coco_naming_and_missing_report(tmp_path, caplog):
    items = [narrative("397133"), narrative("37777"), narrative("252219")]
    path = write_narratives_jsonl(tmp_path / "coco_val_localized_narratives.jsonl", items)
    images = tmp_path / "coco"
    _png(images / "val2017" / "000000397133.jpg")
    _png(images / "val2017" / "000000252219.jpg")
    evalset = build_evalset(path, images)
    assert [i.item_id for i in evalset] == ["397133_1", "37777_1", "252219_1"]  # nothing dropped
    assert evalset.items[0].reference_image == images / "val2017" / "000000397133.jpg"
    assert evalset.items[1].reference_image is None
    assert evalset.missing.item_ids("reference_image") == ["37777_1"]
    assert "000000037777.jpg" in evalset.missing.format()
    assert "1 reference_image" in caplog.text
    assert [i.item_id for i in evalset.with_reference_images()] == ["397133_1", "252219_1"]
    with pytest.raises(InputError, match=r"incomplete: missing 1 reference_image \(first: 37777_1"):
        build_evalset(path, images, on_missing="raise")


def test_openimages_and_flat_naming(tmp_path):
    n = narrative("cd3cf64b94d73b27", 91)
    assert reference_image_path(tmp_path, n, "openimages") == tmp_path / "cd3cf64b94d73b27.jpg"
    assert reference_image_path(tmp_path, n, "flat") == tmp_path / "cd3cf64b94d73b27_91.png"
    with pytest.raises(InputError, match="COCO image ids are integers"):
        reference_image_path(tmp_path, n, "coco")
    path = write_narratives_jsonl(tmp_path / "n.jsonl", [n])
    with pytest.raises(ConfigError, match="did you mean 'flat'"):
        build_evalset(path, tmp_path, naming="flt")  # type: ignore[arg-type]


def test_gold_tags_and_stuffthingmaps_segmentation(tmp_path):
    items = [narrative("1", caption="a dog."), narrative("2", caption="the sky"), narrative("3")]
    path = write_narratives_jsonl(tmp_path / "n.jsonl", items)
    write_sequence_labels(tmp_path / "labels", "val", ["1_1", "2_1"], [["a", "dog"], ["sky"]],
                          [["dog", "dog"], ["sky-other"]])
    seg = tmp_path / "stuffthingmaps" / "val2017"
    seg.mkdir(parents=True)
    Image.fromarray(np.array([[17, 255]], np.uint8)).save(seg / "000000000001.png")  # 17 = dog - 1
    evalset = build_evalset(path, tmp_path, sequence_labels=tmp_path / "labels" / "val",
                            segmentation_root=tmp_path / "stuffthingmaps")
    one, two, three = evalset.items
    assert one.gold_tags == ("dog", "dog") and one.extra["trecs_words"] == "a dog"
    np.testing.assert_array_equal(read_gold_segmentation(one), [[18, 255]])
    assert two.gold_tags is None  # one TReCS word, two caption words: reported, not guessed
    assert three.gold_tags is None and three.gold_segmentation is None
    counts = evalset.missing.counts()
    assert counts == {"reference_image": 3, "gold_tags": 2, "gold_segmentation": 2}
    with pytest.raises(InputError, match="3_1 has no gold segmentation"):
        read_gold_segmentation(three)


def make_toyworld(root, n=3):
    """A tiny folder in the toyworld layout, written with the data layer's own writers."""
    narratives = [narrative(f"toy{i:04d}", 0, "a dog on grass") for i in range(n)]
    write_narratives_jsonl(root / "narratives.jsonl", narratives)
    ids = [x.item_id for x in narratives]
    write_sequence_labels(root / "sequence_labels", "toyworld", ids, [x.words for x in narratives],
                          [["dog", "dog", "grass", "grass"]] * n)
    for item_id in ids:
        _png(root / "images" / f"{item_id}.png", 10)
        _png(root / "images_shifted" / f"{item_id}.png", 20)
        (root / "segmentation").mkdir(exist_ok=True)
        write_label_map(root / "segmentation" / f"{item_id}.png", np.full((8, 8), 124, np.uint8))
    return ids


def test_load_toyworld(tmp_path):
    ids = make_toyworld(tmp_path)
    evalset = load_toyworld(tmp_path)
    assert [i.item_id for i in evalset] == ids and not evalset.missing
    item = evalset.items[0]
    assert item.reference_image == tmp_path / "images" / f"{ids[0]}.png"
    assert item.gold_tags == ("dog", "dog", "grass", "grass")
    assert (read_gold_segmentation(item) == 124).all()  # ids, not stuffthingmaps' id - 1
    assert item.extra["shifted_image"].endswith(f"images_shifted/{ids[0]}.png")
    shifted = load_toyworld(tmp_path, shifted=True)
    assert shifted.items[0].reference_image == tmp_path / "images_shifted" / f"{ids[0]}.png"
    (tmp_path / "images" / f"{ids[1]}.png").unlink()
    assert load_toyworld(tmp_path).missing.item_ids("reference_image") == [ids[1]]
    with pytest.raises(InputError, match="not a toyworld folder"):
        load_toyworld(tmp_path / "images")

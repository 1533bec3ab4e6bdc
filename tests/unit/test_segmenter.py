"""Segmenters: the COCO panoptic -> COCO-Stuff mapping, the oracle, and a tiny real Mask2Former
built from its config, saved, and loaded through the real ``local_files_only`` path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trecs_eval.data import coco_panoptic as cp
from trecs_eval.data.coco_stuff import FIRST_STUFF_ID, LABELS, UNUSED_THING_IDS, label_id, write_label_map
from trecs_eval.errors import ConfigError, InputError, MissingWeightsError
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.segmenter import Mask2FormerSegmenter, OracleSegmenter, segment_images

# Kept stuff classes with their ids in COCO panoptic's category list (panoptic_coco_categories.json):
# written out here independently of the module under test.
PANOPTIC_KEPT_STUFF_IDS = {
    "banner": 92, "blanket": 93, "bridge": 95, "cardboard": 100, "counter": 107, "curtain": 109,
    "door-stuff": 112, "floor-wood": 118, "flower": 119, "fruit": 122, "gravel": 125, "house": 128,
    "light": 130, "mirror-stuff": 133, "net": 138, "pillow": 141, "platform": 144, "playingfield": 145,
    "railroad": 147, "river": 148, "road": 149, "roof": 151, "sand": 154, "sea": 155, "shelf": 156,
    "snow": 159, "stairs": 161, "tent": 166, "towel": 168, "wall-brick": 171, "wall-stone": 175,
    "wall-tile": 176, "wall-wood": 177, "water-other": 178, "window-blind": 180, "window-other": 181,
}
COCO_THING_IDS = {"person": 1, "traffic light": 10, "stop sign": 13, "dining table": 67, "tv": 72,
                  "hair drier": 89, "toothbrush": 90}


def test_mapping_covers_the_133_classes() -> None:
    assert len(cp.PANOPTIC_NAMES) == 133 and len(set(cp.PANOPTIC_NAMES)) == 133
    assert len(cp.PANOPTIC_THING_NAMES) == 80 and len(cp.PANOPTIC_STUFF_NAMES) == 53
    for name, expected in {**PANOPTIC_KEPT_STUFF_IDS, **COCO_THING_IDS}.items():
        assert cp.panoptic_to_coco_stuff_id(name) == expected, name
    assert len(cp.PANOPTIC_OUTPUT_IDS) == 133
    assert not cp.PANOPTIC_OUTPUT_IDS & set(UNUSED_THING_IDS)


def test_merged_groups_partition_the_remaining_stuff() -> None:
    stuff = {lab.id for lab in LABELS if lab.id >= FIRST_STUFF_ID}
    members = [label_id(m) for group in cp.MERGED.values() for m in group]
    assert len(members) == len(set(members)) == 43  # no label in two groups
    kept = {label_id(n) for n in PANOPTIC_KEPT_STUFF_IDS}
    assert kept | set(members) | cp.UNREPRESENTED == stuff
    assert not kept & set(members) and not cp.UNREPRESENTED & (kept | set(members))
    assert cp.canonical_id(label_id("bush")) == label_id("tree")
    assert cp.canonical_id(label_id("clouds")) == cp.panoptic_to_coco_stuff_id("sky-other-merged")
    assert cp.canonical_id(label_id("dog")) == label_id("dog")
    with pytest.raises(KeyError, match="not a COCO panoptic class"):
        cp.panoptic_to_coco_stuff_id("wall")


def _write_pair(directory: Path, name: str, seed: int) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    labels = np.full((24, 32), label_id("grass"), np.uint8)
    labels[:8] = label_id("sky-other")
    labels[10:20, 5:15] = label_id("dog")
    directory.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(directory / f"{name}.png")
    write_label_map(directory / f"{name}.seg.png", labels)
    return directory / f"{name}.png", directory / f"{name}.seg.png", labels


def test_oracle_returns_gold_maps_by_pixels(tmp_path) -> None:
    img, gold, labels = _write_pair(tmp_path, "a", 0)
    other, _, _ = _write_pair(tmp_path / "other", "b", 1)
    oracle = OracleSegmenter([(img, gold, False)])
    recoded = tmp_path / "recoded.png"
    Image.open(img).save(recoded, compress_level=0)  # other bytes, same pixels
    assert recoded.read_bytes() != img.read_bytes()
    assert np.array_equal(oracle.segment(str(recoded)), labels)
    assert np.array_equal(oracle.segment(str(other)), np.zeros((24, 32), np.uint8))
    assert oracle.unknown_images == 1
    with pytest.raises(InputError, match="unknown to the oracle"):
        OracleSegmenter([(img, gold, False)], unknown="error").segment(str(other))


class _Counting:
    """Wraps a segmenter and counts its calls (the cache must make the second pass free)."""

    def __init__(self, inner: OracleSegmenter) -> None:
        self.inner, self.calls = inner, 0
        self.identity, self.output_ids = inner.identity, inner.output_ids

    def canonical(self, label: int) -> int:
        return label

    def segment(self, path: str) -> np.ndarray:
        self.calls += 1
        return self.inner.segment(path)


def test_segment_images_is_cached_by_content(tmp_path) -> None:
    img, gold, labels = _write_pair(tmp_path, "a", 0)
    seg = _Counting(OracleSegmenter([(img, gold, False)]))
    cache = FeatureCache(tmp_path / "c.sqlite")
    first = segment_images(seg, [img, img], cache)
    second = segment_images(seg, [img], cache)
    assert seg.calls == 1 and np.array_equal(first[1], labels) and np.array_equal(second[0], labels)
    assert second[0].dtype == np.uint8


def _tiny_mask2former(directory: Path, id2label: dict[int, str]) -> Path:
    """A Mask2Former of the real class, random weights, ~0.35 M parameters, saved like a release."""
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1],
                          num_heads=[1, 1, 1, 1], window_size=4,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_labels=len(id2label), id2label=id2label,
                               label2id={v: k for k, v in id2label.items()}, hidden_dim=32, num_queries=8,
                               encoder_layers=1, decoder_layers=2, num_attention_heads=2, dim_feedforward=32,
                               mask_feature_size=32, feature_size=32, encoder_feedforward_dim=32)
    torch.manual_seed(0)
    Mask2FormerForUniversalSegmentation(config).save_pretrained(directory)
    Mask2FormerImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return _tiny_mask2former(tmp_path_factory.mktemp("m2f"), dict(enumerate(cp.PANOPTIC_NAMES)))


def test_tiny_mask2former_through_the_real_loading_path(tiny_dir, tmp_path) -> None:
    seg = Mask2FormerSegmenter(tiny_dir, device="cpu")
    assert seg.lut[cp.PANOPTIC_NAMES.index("tree-merged")] == label_id("tree")
    assert seg.lut[cp.PANOPTIC_NAMES.index("traffic light")] == label_id("traffic-light")
    img, _, _ = _write_pair(tmp_path, "a", 3)
    labels = seg.segment(str(img))
    assert labels.shape == (24, 32) and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) <= seg.output_ids
    assert seg.identity.extra["n_classes"] == 133 and "transformers" in seg.identity.versions
    assert seg.canonical(label_id("bush")) == label_id("tree")


def test_bad_checkpoints_are_clear_errors(tmp_path) -> None:
    with pytest.raises(MissingWeightsError, match=r"config\.json"):
        Mask2FormerSegmenter(tmp_path / "absent", device="cpu")
    ade = _tiny_mask2former(tmp_path / "ade", {0: "wall", 1: "building"})
    with pytest.raises(ConfigError, match="not a COCO panoptic class"):
        Mask2FormerSegmenter(ade, device="cpu")

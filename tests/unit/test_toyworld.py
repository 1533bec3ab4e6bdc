"""Toyworld: layout on disk, determinism, full coverage, gold tags (independently recomputed), COCO
annotations, traces and the shifted set. Small worlds (a dozen 128 px scenes) keep this fast."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as MplPath
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.spatial import ConvexHull, QhullError

from trecs_eval.data.coco_stuff import ID_TO_NAME, NAME_TO_ID, UNLABELED_IDS
from trecs_eval.data.localized_narratives import read_narratives
from trecs_eval.data.narratives import tokenize
from trecs_eval.data.sequence_labels import read_sequence_labels
from trecs_eval.data.toyworld import generate_scene, write_toyworld
from trecs_eval.data.toyworld_classes import CLASSES, vocabulary
from trecs_eval.data.toyworld_io import read_manifest
from trecs_eval.data.toyworld_narrative import caption_of
from trecs_eval.data.toyworld_trace import hull_majority_label
from trecs_eval.errors import ConfigError, InputError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

N_ITEMS = 12
SEED = 3
SIZE = 128
# Shifted images: mean absolute difference per image, in grey levels (0-255). Objects move by
# 3-8% of the side, colours by ~14 levels, plus a blur: measured 15-31 on 30 scenes at 128 px,
# while two unrelated scenes differ by 27-95 (median 60).
SHIFT_MIN_MEAN_ABS_DIFF = 3.0
SHIFT_MAX_MEAN_ABS_DIFF = 40.0
# Share of utterances naming an object whose gold tag (hull majority) is that object's class.
MIN_MENTION_AGREEMENT = 0.85
# Regions of one seed's scenes classified by 1-nearest-neighbour on colour/texture statistics of
# another seed's regions (36 classes; chance is below 0.1). Measured 0.98 at 128 px.
MIN_REGION_1NN_ACCURACY = 0.9


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toyworld") / "world"
    write_toyworld(out, n=N_ITEMS, seed=SEED, image_size=SIZE, progress=False)
    return out


def _records(world: Path) -> list[dict]:
    text = (world / "narratives.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _lines(world: Path, kind: str) -> list[str]:
    return (world / "sequence_labels" / f"toyworld.{kind}.txt").read_text(encoding="utf-8").splitlines()


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def test_layout_and_counts(world: Path) -> None:
    manifest = read_manifest(world)
    assert (manifest.n, manifest.seed, manifest.image_size, manifest.shifted) == (N_ITEMS, SEED, SIZE, True)
    assert len(set(manifest.item_ids)) == N_ITEMS
    records = _records(world)
    assert [f"{r['image_id']}_{r['annotator_id']}" for r in records] == list(manifest.item_ids)
    assert _lines(world, "ids") == list(manifest.item_ids)
    assert len(_lines(world, "words")) == len(_lines(world, "tags")) == N_ITEMS
    for folder in ("images", "images_shifted", "segmentation", "instances"):
        assert sorted(p.stem for p in (world / folder).glob("*.png")) == sorted(manifest.item_ids)
    item = manifest.item_ids[0]
    assert _png(world / "images" / f"{item}.png").shape == (SIZE, SIZE, 3)
    assert _png(world / "instances" / f"{item}.png").dtype == np.uint16
    for r in records:
        assert r["dataset_id"] == "toyworld" and r["voice_recording"] == ""
        assert isinstance(r["annotator_id"], int)
        assert int(r["image_id"]) // 1_000_000 == SEED
    assert not list(world.parent.glob(".world.tmp-*")), "temporary folder left behind"


def test_reads_back_through_the_ln_and_sequence_label_readers(world: Path) -> None:
    narratives = read_narratives(world / "narratives.jsonl").narratives
    labels = read_sequence_labels(world / "sequence_labels", "toyworld")
    assert labels.tags_file == "tags" and list(labels.ids) == [n.item_id for n in narratives]
    for index, narrative in enumerate(narratives):
        scene = generate_scene(index, SEED, SIZE)
        assert narrative == scene.narrative  # every float survives the JSON round trip
        assert labels.words[index] == tuple(narrative.words) and labels.tags[index] == scene.tags


def _tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_toyworld(a, n=3, seed=11, image_size=64, progress=False)
    write_toyworld(b, n=3, seed=11, image_size=64, progress=False, workers=2)
    write_toyworld(c, n=3, seed=12, image_size=64, progress=False)
    hashes_a, hashes_c = _tree_hashes(a), _tree_hashes(c)
    assert hashes_a == _tree_hashes(b)
    assert len(hashes_a) == 4 * 3 + 6
    assert hashes_a["narratives.jsonl"] != hashes_c["narratives.jsonl"]
    images_a = sorted(v for k, v in hashes_a.items() if k.startswith("images/"))
    images_c = sorted(v for k, v in hashes_c.items() if k.startswith("images/"))
    assert not set(images_a) & set(images_c)


def test_segmentation_fully_covered_with_toyworld_classes(world: Path) -> None:
    allowed = {CLASSES[name].label for name in vocabulary()}
    for item in read_manifest(world).item_ids:
        seg = _png(world / "segmentation" / f"{item}.png")
        assert seg.dtype == np.uint8 and seg.shape == (SIZE, SIZE)
        present = set(np.unique(seg).tolist())
        assert present <= allowed and not present & set(UNLABELED_IDS)
        assert len(present) >= 3, f"{item}: only {present}"
        instances = _png(world / "instances" / f"{item}.png")
        assert instances.min() >= 1
        # every instance is one class
        pairs = np.unique(np.stack([instances.ravel(), seg.ravel()]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1]


def test_words_and_tags_align_with_the_narrative(world: Path) -> None:
    columns = (_records(world), _lines(world, "words"), _lines(world, "tags"))
    for record, words, tags in zip(*columns, strict=True):
        assert words.split() == tokenize(record["caption"])
        assert words.split() == [w for u in record["timed_caption"] for w in tokenize(u["utterance"])]
        assert len(tags.split()) == len(words.split())
        assert all(tag in NAME_TO_ID for tag in tags.split())


def test_traces_stay_near_the_image_and_sometimes_overshoot(world: Path) -> None:
    records = _records(world)
    points = np.asarray([(p["x"], p["y"], p["t"]) for r in records for seg in r["traces"] for p in seg])
    assert points[:, :2].min() >= -0.1 and points[:, :2].max() <= 1.1
    outside = np.mean((points[:, :2] < 0) | (points[:, :2] > 1))
    assert 0 < outside < 0.05
    for r in _records(world):
        times = [p["t"] for seg in r["traces"] for p in seg]
        assert np.all(np.diff(times) > 0), "trace times must increase"
        spans = [(u["start_time"], u["end_time"]) for u in r["timed_caption"]]
        assert all(s < e for s, e in spans) and all(e0 < s1 for (_, e0), (s1, _) in itertools.pairwise(spans))


def _independent_hull_majority(points: np.ndarray, seg: np.ndarray) -> int:
    """Majority label of pixel centres inside the convex hull, via scipy + matplotlib."""
    size = seg.shape[0]
    xy = points * size
    try:
        hull = ConvexHull(xy)
    except QhullError:
        hull = None
    if hull is None or hull.volume < 1e-9:
        cols = np.minimum((points[:, 0] * size).astype(int), size - 1)
        rows = np.minimum((points[:, 1] * size).astype(int), size - 1)
        return int(np.bincount(seg[rows, cols]).argmax())
    cy, cx = np.mgrid[0:size, 0:size] + 0.5
    inside = MplPath(xy[hull.vertices]).contains_points(np.stack([cx.ravel(), cy.ravel()], 1), radius=1e-9)
    inside |= MplPath(xy[hull.vertices]).contains_points(np.stack([cx.ravel(), cy.ravel()], 1), radius=-1e-9)
    return int(np.bincount(seg.ravel()[inside]).argmax())


def test_gold_tags_are_the_majority_label_under_each_utterance_hull(world: Path) -> None:
    checked = 0
    for record, tags in zip(_records(world), _lines(world, "tags"), strict=True):
        seg = _png(world / "segmentation" / f"{record['image_id']}_{record['annotator_id']}.png")
        trace = np.asarray([(p["x"], p["y"], p["t"]) for s in record["traces"] for p in s])
        tags_left = tags.split()
        for utt in record["timed_caption"]:
            inside = (trace[:, 2] >= utt["start_time"]) & (trace[:, 2] <= utt["end_time"])
            points = np.clip(trace[inside, :2], 0, 1)
            assert len(points) >= 3
            n_words = len(tokenize(utt["utterance"]))
            expected = ID_TO_NAME[_independent_hull_majority(points, seg)]
            assert tags_left[:n_words] == [expected] * n_words, utt["utterance"]
            tags_left = tags_left[n_words:]
            checked += 1
        assert not tags_left
    assert checked >= 3 * N_ITEMS


def test_annotations_decode_back_to_the_segmentation(world: Path) -> None:
    coco = json.loads((world / "annotations.json").read_text(encoding="utf-8"))
    assert {c["id"] for c in coco["categories"]} >= {CLASSES[n].label for n in vocabulary()}
    for cat in coco["categories"]:
        assert cat["name"] == ID_TO_NAME[cat["id"]]
        assert cat["supercategory"] == ("thing" if cat["id"] < 92 else "stuff")
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    for image in coco["images"]:
        rebuilt = np.zeros((image["height"], image["width"]), dtype=np.uint8)
        for ann in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            assert ann["area"] == mask.sum() > 0 and ann["iscrowd"] == 0
            assert not rebuilt[mask].any(), "annotations overlap"
            rebuilt[mask] = ann["category_id"]
        seg = _png(world / "segmentation" / image["file_name"])
        np.testing.assert_array_equal(rebuilt, seg)


def test_shifted_images_differ_by_a_bounded_nonzero_amount(world: Path) -> None:
    for item in read_manifest(world).item_ids:
        a = _png(world / "images" / f"{item}.png").astype(float)
        b = _png(world / "images_shifted" / f"{item}.png").astype(float)
        assert SHIFT_MIN_MEAN_ABS_DIFF < np.abs(a - b).mean() < SHIFT_MAX_MEAN_ABS_DIFF


def test_gold_tags_mostly_name_the_mentioned_object() -> None:
    agree = total = 0
    for index in range(10):
        scene = generate_scene(index, seed=5, image_size=SIZE)
        words_per_utt = [len(tokenize(u.utterance)) for u in scene.narrative.timed_caption]
        starts = np.cumsum([0, *words_per_utt[:-1]])
        for start, mentioned in zip(starts, scene.mentioned, strict=True):
            if mentioned is not None:
                total += 1
                agree += scene.tags[start] == ID_TO_NAME[mentioned]
    assert total > 30 and agree / total >= MIN_MENTION_AGREEMENT


def test_hull_majority_matches_scipy_and_matplotlib_on_random_point_sets() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array([7, 92, 123, 149]), size=(6, 6)).repeat(6, 0).repeat(6, 1).astype(np.uint8)
    cases = [rng.random((int(rng.integers(1, 25)), 2)) for _ in range(150)]
    cases += [np.array([[0.5, 0.5]]), np.array([[0.1, 0.1], [0.9, 0.9]]),
              np.array([[0.1, 0.2], [0.5, 0.2], [0.9, 0.2]]),  # collinear: zero-area hull
              np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])]
    for points in cases:
        assert hull_majority_label(points, labels) == _independent_hull_majority(points, labels), points


def _region_features(scene) -> list[tuple[int, np.ndarray]]:
    """Per region: label and (mean RGB, std RGB, mean |horizontal| and |vertical| gradient)."""
    image = scene.image.astype(np.float32)
    grey = image.mean(axis=2)
    gx = np.abs(np.diff(grey, axis=1, append=grey[:, -1:]))
    gy = np.abs(np.diff(grey, axis=0, append=grey[-1:, :]))
    out = []
    for inst in np.unique(scene.instances):
        mask = scene.instances == inst
        if mask.sum() >= 100:
            px = image[mask]
            feature = np.concatenate([px.mean(0), px.std(0), [gx[mask].mean(), gy[mask].mean()]])
            out.append((int(scene.labels[mask][0]), feature))
    return out


def test_regions_are_recognisable_across_seeds_by_colour_and_texture() -> None:
    train = [r for i in range(30) for r in _region_features(generate_scene(i, 21, 96))]
    test = [r for i in range(12) for r in _region_features(generate_scene(i, 22, 96))]
    x, y = np.stack([f for _, f in train]), np.array([lab for lab, _ in train])
    xt, yt = np.stack([f for _, f in test]), np.array([lab for lab, _ in test])
    scale = x.std(axis=0)
    dist = (((xt[:, None, :] - x[None]) / scale) ** 2).sum(axis=2)
    assert len(test) > 60 and np.mean(y[dist.argmin(axis=1)] == yt) >= MIN_REGION_1NN_ACCURACY


_PHRASES = ("in this image we can see", "a brown dog sitting", "on the green grass", "and a man",
            "next to it there is a red car", "beside that there is a tv", "we can also see the blue sky",
            "in the background we can see trees", "at the top there is sand", "and another dog's toy")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_PHRASES), min_size=1, max_size=12))
def test_caption_adds_only_punctuation_and_case(utterances: list[str]) -> None:
    caption = caption_of(utterances)
    assert tokenize(caption) == [w for u in utterances for w in tokenize(u)]
    assert caption[0].isupper() and caption.endswith(".")


def test_vocabulary_is_moderate_and_valid() -> None:
    names = vocabulary()
    assert 30 <= len(names) <= 40
    assert all(name in NAME_TO_ID for name in names)


def test_bad_arguments_and_foreign_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n must be"):
        write_toyworld(tmp_path / "x", n=0, progress=False)
    with pytest.raises(ConfigError, match="image_size"):
        write_toyworld(tmp_path / "x", n=1, image_size=8, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a toyworld folder"):
        write_toyworld(foreign, n=1, image_size=64, progress=False)
    assert (foreign / "keep.txt").read_text() == "mine"
    with pytest.raises(InputError, match=r"manifest\.json"):
        read_manifest(foreign)
    (foreign / "manifest.json").write_text('{"format": "trecs-eval/toyworld", "format_version": 99}')
    with pytest.raises(InputError, match="format_version"):
        read_manifest(foreign)

"""A miniature of every real source of the LN-COCO / LN-OpenImages benchmarks, in its real layout.

``build_mirror(DIR)`` writes, from a small toyworld, the files a mirror of the official hosts
holds (one base URL; the relative paths are those ``trecs_eval.data.download_sources`` asks for):

    coco_val_localized_narratives.jsonl                      LN JSONL, dataset_id mscoco_val2017
    coco_train_localized_narratives-0000K-of-00004.jsonl     4 shards, mscoco_train2017
    open_images_validation_localized_narratives.jsonl        LN JSONL, 16-hex-digit image ids
    sequence_labels/{val_coco,val_oi,train_coco}.*.txt       the released TReCS files at hand (full or the
                                                             vendored subset) + miniature train words and
                                                             train_coco.cleaned_tags.txt (the other name)
    val2017.zip, train2017.zip                               val2017/000000xxxxxx.jpg, train2017/...
    annotations_trainval2017.zip                             annotations/instances_{train,val}2017.json
                                                             (polygons), captions_*.json, person_keypoints
    stuff_annotations_trainval2017.zip                       annotations/stuff_{train,val}2017.json (RLE,
                                                             categories 92-183) + *_pixelmaps.zip
    stuffthingmaps_trainval2017.zip                          {train,val}2017/000000xxxxxx.png (id - 1)
    trecs_images.tar                                         {image_id}_{annotator_id}.png, 256 px
    validation/{image_id}.jpg                                the Open Images val images (all ~1,000 ids
                                                             of val_oi.ids.txt; one picture for most)

The evaluation narratives take their ids and words from the real TReCS files (the first lines
whose words our tokenizer reproduces), so the label files are served unchanged and gold tags join; their
pictures, traces and maps come from toyworld scenes.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trecs_eval.data.coco_stuff import coco_categories, masks_to_coco_annotations, read_instance_map
from trecs_eval.data.localized_narratives import narrative_to_dict, read_narratives
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint, tokenize
from trecs_eval.data.sequence_labels import read_sequence_labels

RELEASED_SIZE = 256  # the shipped configs' image_size: the folder baseline checks it
THING_MAX_ID = 91  # COCO-Stuff: 1-91 things (COCO instances), 92-182 stuff, 183 "other"
OTHER_ID = 183


@dataclass(frozen=True)
class Mirror:
    root: Path
    coco_val_ids: tuple[str, ...]
    oi_val_ids: tuple[str, ...]
    train_image_ids: tuple[int, ...]


def _jpeg(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _retime(words: list[str], scene: Narrative, **ids: Any) -> Narrative:
    """A narrative saying ``words`` (one utterance per word, 0.5 s each) over the scene's trace."""
    span = 0.5 * len(words)
    points = [p for seg in scene.traces for p in seg]
    t0, t1 = points[0].t, max(points[-1].t, points[0].t + 1e-6)
    trace = tuple(TracePoint(p.x, p.y, (p.t - t0) / (t1 - t0) * span) for p in points)
    timed = tuple(TimedUtterance(w, 0.5 * i, 0.5 * i + 0.4) for i, w in enumerate(words))
    return Narrative(caption=" ".join(words), timed_caption=timed, traces=(trace,), **ids)


def _usable_lines(labels_dir: Path, split: str, n: int) -> list[tuple[str, list[str]]]:
    """The first ``n`` (id, words) lines whose words tokenize back to themselves, distinct images."""
    labels = read_sequence_labels(labels_dir, split, tags="none")
    out, images = [], set()
    for item_id, words in zip(labels.ids, labels.words, strict=True):
        image_id = item_id.rpartition("_")[0]
        if tokenize(" ".join(words)) == list(words) and image_id not in images and len(words) >= 5:
            out.append((item_id, list(words)))
            images.add(image_id)
        if len(out) == n:
            break
    return out


def _coco_json(images: list[dict[str, Any]], anns: list[dict[str, Any]], things: bool) -> bytes:
    cats = [c for c in coco_categories() if (c["id"] <= THING_MAX_ID) == things]
    for cat in cats:  # COCO's own names have spaces ("traffic light"); COCO-Stuff's have hyphens
        cat["name"] = cat["name"].replace("-", " ") if things else cat["name"]
    if not things:
        cats.append({"id": OTHER_ID, "name": "other", "supercategory": "other"})
    return json.dumps({"info": {"description": "miniature"}, "licenses": [], "images": images,
                       "annotations": anns, "categories": cats}).encode()


def _annotations(scene_dir: Path, item_id: str, image_id: int, first_id: int) -> tuple[list, list]:
    """(thing annotations as polygons of their bbox, stuff annotations as RLE + one "other")."""
    labels = np.asarray(Image.open(scene_dir / "segmentation" / f"{item_id}.png"))
    instances = read_instance_map(scene_dir / "instances" / f"{item_id}.png")
    things, stuff = [], []
    for ann in masks_to_coco_annotations(labels, instances, image_id, first_annotation_id=first_id):
        if ann["category_id"] <= THING_MAX_ID:
            x, y, w, h = ann["bbox"]
            ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            things.append(ann)
        else:
            stuff.append(ann)
    other = dict(stuff[0], id=first_id + 10_000, category_id=OTHER_ID) if stuff else None
    return things, stuff + ([other] if other else [])


def _split_files(scene_dir: Path, scenes: list[Narrative], coco_ids: list[int], split: str,
                 files: dict[str, dict[str, bytes]]) -> tuple[list, list, list]:
    """Images, maps and annotations of one COCO split into ``files`` (zip name -> members)."""
    images, things, stuff = [], [], []
    for n, (scene, coco_id) in enumerate(zip(scenes, coco_ids, strict=True)):
        name = f"{coco_id:012d}"
        picture = scene_dir / "images" / f"{scene.item_id}.png"
        files[f"{split}.zip"][f"{split}/{name}.jpg"] = _jpeg(picture)
        ids = np.asarray(Image.open(scene_dir / "segmentation" / f"{scene.item_id}.png")).astype(np.int16)
        files["stuffthingmaps_trainval2017.zip"][f"{split}/{name}.png"] = _png(
            np.where((ids > 0) & (ids < 255), ids - 1, 255).astype(np.uint8))
        size = Image.open(picture).size
        images.append({"id": coco_id, "file_name": f"{name}.jpg", "width": size[0], "height": size[1]})
        t, s = _annotations(scene_dir, scene.item_id, coco_id, 1 + 100 * n)
        things += t
        stuff += s
    return images, things, stuff


def build_mirror(root: Path, toy_dir: Path, labels_dir: Path, *, n_val: int = 5, n_oi: int = 4,
                 n_train: int = 12) -> Mirror:
    """Write the mirror into ``root`` from the toyworld ``toy_dir`` (>= n_val + n_oi + n_train scenes)."""
    scenes = list(read_narratives(toy_dir / "narratives.jsonl").narratives)
    val_scenes, oi_scenes = scenes[:n_val], scenes[n_val:n_val + n_oi]
    train_scenes = scenes[n_val + n_oi:n_val + n_oi + n_train]
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, bytes]] = {k: {} for k in (
        "val2017.zip", "train2017.zip", "stuffthingmaps_trainval2017.zip")}
    released: dict[str, bytes] = {}

    val_lines = _usable_lines(labels_dir, "val_coco", n_val)
    val = [_retime(w, s, dataset_id="mscoco_val2017", image_id=i.rpartition("_")[0],
                   annotator_id=int(i.rpartition("_")[2]))
           for (i, w), s in zip(val_lines, val_scenes, strict=True)]
    val_ids = [int(n.image_id) for n in val]
    val_images, val_things, val_stuff = _split_files(toy_dir, val_scenes, val_ids, "val2017", files)
    train_ids = [int(s.image_id) for s in train_scenes]
    train = [replace(s, dataset_id="mscoco_train2017") for s in train_scenes]
    train_images, train_things, train_stuff = _split_files(toy_dir, train_scenes, train_ids, "train2017",
                                                           files)

    oi_lines = _usable_lines(labels_dir, "val_oi", n_oi)
    oi = [_retime(w, s, dataset_id="open_images_validation", image_id=i.rpartition("_")[0],
                  annotator_id=int(i.rpartition("_")[2]))
          for (i, w), s in zip(oi_lines, oi_scenes, strict=True)]
    (root / "validation").mkdir(exist_ok=True)
    filler = _jpeg(toy_dir / "images" / f"{oi_scenes[0].item_id}.png")
    for item_id in read_sequence_labels(labels_dir, "val_oi", tags="none").ids:  # the downloader takes all
        (root / "validation" / f"{item_id.rpartition('_')[0]}.jpg").write_bytes(filler)
    for narrative, scene in zip(oi, oi_scenes, strict=True):
        (root / "validation" / f"{narrative.image_id}.jpg").write_bytes(
            _jpeg(toy_dir / "images" / f"{scene.item_id}.png"))
    for narrative, scene in zip(val + oi, val_scenes + oi_scenes, strict=True):
        picture = Image.open(toy_dir / "images" / f"{scene.item_id}.png").convert("RGB")
        folder = "coco_val" if narrative in val else "openimages_val"
        released[f"trecs_images/{folder}/{narrative.item_id}.png"] = _png(
            np.asarray(picture.resize((RELEASED_SIZE, RELEASED_SIZE), Image.Resampling.NEAREST)))

    _write_jsonl(root / "coco_val_localized_narratives.jsonl", val)
    _write_jsonl(root / "open_images_validation_localized_narratives.jsonl", oi)
    for k in range(4):
        _write_jsonl(root / f"coco_train_localized_narratives-{k:05d}-of-00004.jsonl", train[k::4])
    for name, members in files.items():
        _zip(root / name, members)
    _zip(root / "annotations_trainval2017.zip", {
        "annotations/instances_train2017.json": _coco_json(train_images, train_things, True),
        "annotations/instances_val2017.json": _coco_json(val_images, val_things, True),
        "annotations/captions_train2017.json": b'{"annotations": []}',
        "annotations/captions_val2017.json": b'{"annotations": []}',
        "annotations/person_keypoints_val2017.json": b"{}",
    })
    _zip(root / "stuff_annotations_trainval2017.zip", {
        "annotations/stuff_train2017.json": _coco_json(train_images, train_stuff, False),
        "annotations/stuff_val2017.json": _coco_json(val_images, val_stuff, False),
        "annotations/stuff_train2017_pixelmaps.zip": b"PK\x05\x06" + b"\0" * 18,
        "annotations/stuff_val2017_pixelmaps.zip": b"PK\x05\x06" + b"\0" * 18,
    })
    with tarfile.open(root / "trecs_images.tar", "w") as tf:
        for name, data in released.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _trecs_labels(root / "sequence_labels", labels_dir, toy_dir, train_scenes)
    return Mirror(root, tuple(n.item_id for n in val), tuple(n.item_id for n in oi), tuple(train_ids))


def _write_jsonl(path: Path, narratives: list[Narrative]) -> None:
    path.write_text("".join(json.dumps(narrative_to_dict(n)) + "\n" for n in narratives), encoding="utf-8")


def _trecs_labels(out: Path, labels_dir: Path, toy_dir: Path, train_scenes: list[Narrative]) -> None:
    """The real pinned files, plus train words/tags from the toyworld train scenes (the tags
    under the val file's name ``cleaned_tags``, so the download's fallback name is exercised)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("val_coco.ids.txt", "val_coco.words.txt", "val_coco.cleaned_tags.txt", "val_oi.ids.txt",
                 "val_oi.words.txt", "train_coco.ids.txt"):
        (out / name).write_bytes((labels_dir / name).read_bytes())
    toy = read_sequence_labels(toy_dir / "sequence_labels", "toyworld")
    index = toy.index()
    rows = [index[s.item_id] for s in train_scenes]
    assert toy.tags is not None
    (out / "train_coco.words.txt").write_text("".join(" ".join(toy.words[r]) + "\n" for r in rows))
    (out / "train_coco.cleaned_tags.txt").write_text("".join(" ".join(toy.tags[r]) + "\n" for r in rows))

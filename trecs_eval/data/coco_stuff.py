"""COCO-Stuff label space: 182 ids, names as spelled in the TReCS tag files, a fixed palette.

Ids follow COCO-Stuff's ``labels.txt``: things 1-91 (COCO's numbering, including the 11
ids that COCO never annotates, e.g. 12 ``street-sign``), stuff 92-182, and 0 / 255 for
unlabeled pixels. Multi-word thing names are hyphenated (``traffic-light``), which is how
the released TReCS ``cleaned_tags`` files spell them.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from trecs_eval.atomic import atomic_write
from trecs_eval.errors import InputError, suggest

UNLABELED_IDS = (0, 255)
FIRST_STUFF_ID = 92

# fmt: off
_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic-light", "fire-hydrant", "street-sign", "stop-sign", "parking-meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    "hat", "backpack", "umbrella", "shoe", "eye-glasses", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports-ball", "kite", "baseball-bat", "baseball-glove",
    "skateboard", "surfboard", "tennis-racket", "bottle", "plate", "wine-glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot-dog", "pizza", "donut", "cake", "chair", "couch", "potted-plant", "bed",
    "mirror", "dining-table", "window", "desk", "toilet", "door", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell-phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "blender", "book", "clock", "vase", "scissors", "teddy-bear",
    "hair-drier", "toothbrush", "hair-brush",
    # stuff, 92..182
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
    "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence",
    "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower",
    "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other",
    "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain",
    "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic",
    "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof",
    "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent",
    "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete",
    "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)
# fmt: on
# Thing ids listed in COCO-Stuff's labels.txt but never annotated in COCO.
UNUSED_THING_IDS = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91})

assert len(_NAMES) == 182, len(_NAMES)


@dataclass(frozen=True)
class Label:
    """One COCO-Stuff class."""

    id: int
    name: str

    @property
    def is_thing(self) -> bool:
        return self.id < FIRST_STUFF_ID

    @property
    def is_stuff(self) -> bool:
        return self.id >= FIRST_STUFF_ID


LABELS: tuple[Label, ...] = tuple(Label(i + 1, n) for i, n in enumerate(_NAMES))
ID_TO_NAME: dict[int, str] = {lab.id: lab.name for lab in LABELS}
NAME_TO_ID: dict[str, int] = {lab.name: lab.id for lab in LABELS}


def label_id(name: str) -> int:
    """Id of a label name (``"sky-other"`` -> 157); spaces are accepted for hyphens."""
    key = name.strip().lower().replace(" ", "-")
    if key not in NAME_TO_ID:
        raise KeyError(f"unknown COCO-Stuff label {name!r}{suggest(key, NAME_TO_ID)}")
    return NAME_TO_ID[key]


def label_name(label: int) -> str:
    """Name of a label id; 0 and 255 are ``"unlabeled"``."""
    if label in UNLABELED_IDS:
        return "unlabeled"
    return ID_TO_NAME[int(label)]


def _make_palette() -> np.ndarray:
    # A fixed, seeded palette (not a user-visible random step): distinct, reproducible colours.
    rng = np.random.default_rng(20210105)
    palette = rng.integers(32, 256, size=(256, 3), dtype=np.uint8)
    palette[0] = palette[255] = 0
    return palette


PALETTE: np.ndarray = _make_palette()
"""(256, 3) uint8 colour per label id; unlabeled ids are black."""


def colorize(label_map: np.ndarray) -> np.ndarray:
    """H×W label ids -> H×W×3 uint8 palette picture."""
    return PALETTE[np.asarray(label_map, dtype=np.uint8)]


# ---------------------------------------------------------------------------------------------
# Pixel maps: PNG label maps and COCO-format annotation JSON
# ---------------------------------------------------------------------------------------------
MAX_LABEL_ID = 182


def _check_label_values(labels: np.ndarray, path: str) -> None:
    bad = np.unique(labels[(labels > MAX_LABEL_ID) & (labels != 255)])
    if bad.size:
        raise InputError(f"pixel values {bad[:5].tolist()} are not COCO-Stuff ids (0-182, 255)", path)


def _read_png(path: Path, what: str) -> tuple[str, np.ndarray]:
    """(PIL mode, pixel array) of a PNG; an unreadable file is an InputError naming it."""
    from trecs_eval.features.decode import open_image

    with open_image(path) as image:  # an unreadable file or a decompression bomb: InputError naming it
        image.load()
        return image.mode, np.asarray(image)


def read_label_map(path: str | os.PathLike[str], *, zero_based: bool = False) -> np.ndarray:
    """A PNG of per-pixel COCO-Stuff ids -> (H, W) uint8 array of ids (1-182; 0/255 unlabeled).

    ``zero_based=True`` reads the released COCO-Stuff ``stuffthingmaps_trainval2017`` PNGs,
    whose pixel value is ``id - 1`` (0 = person) with 255 unlabeled; they are shifted to ids.
    Palette ("P") PNGs are read by index. RGB pictures, 16-bit PNGs and values that are not
    ids raise InputError naming the file.
    """
    p = Path(path)
    mode, array = _read_png(p, "label map")
    if mode not in ("L", "P"):
        raise InputError(f"label maps are 8-bit single-channel PNGs, got mode {mode!r}", str(p),
                         hint="a colour picture cannot be read as label ids")
    labels = array.astype(np.uint8, copy=True)
    if zero_based:
        shifted = labels != 255
        labels[shifted] = labels[shifted] + 1
    _check_label_values(labels, str(p))
    return labels


def write_label_map(path: str | os.PathLike[str], labels: np.ndarray) -> Path:
    """Write an (H, W) array of COCO-Stuff ids as an 8-bit grayscale PNG (read back exactly)."""
    array = np.asarray(labels)
    if array.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {array.shape}")
    _check_label_values(array, str(path))
    with atomic_write(path) as handle:
        Image.fromarray(array.astype(np.uint8)).save(handle, format="PNG")
    return Path(path)


def read_instance_map(path: str | os.PathLike[str]) -> np.ndarray:
    """A 16-bit (or 8-bit) PNG of instance ids (0 = none) -> (H, W) int32 array."""
    p = Path(path)
    mode, array = _read_png(p, "instance map")
    if mode not in ("I;16", "I", "L", "P"):
        raise InputError(f"instance maps are single-channel PNGs, got mode {mode!r}", str(p))
    return array.astype(np.int32)


def write_instance_map(path: str | os.PathLike[str], instances: np.ndarray) -> Path:
    """Write (H, W) instance ids in [0, 65535] as a 16-bit PNG."""
    array = np.asarray(instances)
    if array.ndim != 2 or array.min(initial=0) < 0 or array.max(initial=0) > 65535:
        raise ValueError("instance map must be 2-D with ids in [0, 65535]")
    with atomic_write(path) as handle:
        Image.fromarray(array.astype(np.uint16)).save(handle, format="PNG")
    return Path(path)


def coco_categories() -> list[dict[str, Any]]:
    """COCO-format ``categories``: every COCO-Stuff label with its id and name."""
    return [{"id": lab.id, "name": lab.name, "supercategory": "thing" if lab.is_thing else "stuff"}
            for lab in LABELS]


def masks_to_coco_annotations(
    labels: np.ndarray,
    instances: np.ndarray | None,
    image_id: int,
    *,
    first_annotation_id: int = 1,
) -> list[dict[str, Any]]:
    """COCO annotations (compressed RLE) of one image's label map.

    One annotation per instance id (``instances`` > 0; its category is the most frequent label
    under it), and one per label for labelled pixels not covered by an instance (or for every
    label when ``instances`` is None). Unlabeled pixels (0/255) get no annotation. ``area`` is
    the pixel count, ``bbox`` is ``[x, y, w, h]`` in pixels.
    """
    labels = np.asarray(labels)
    inst = np.zeros(labels.shape, np.int64) if instances is None else np.asarray(instances, np.int64)
    if inst.shape != labels.shape:
        raise ValueError(f"instance map {inst.shape} and label map {labels.shape} differ in shape")
    regions: list[tuple[int, np.ndarray]] = []
    for instance_id in np.unique(inst[inst > 0]):
        mask = inst == instance_id
        values, counts = np.unique(labels[mask], return_counts=True)
        regions.append((int(values[np.argmax(counts)]), mask))
    rest = (inst == 0) & (labels != 0) & (labels != 255)
    for label in np.unique(labels[rest]):
        regions.append((int(label), rest & (labels == label)))
    out = []
    for offset, (category, mask) in enumerate(regions):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        out.append({
            "id": first_annotation_id + offset, "image_id": int(image_id), "category_id": category,
            "segmentation": rle, "area": int(mask.sum()),
            "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0,
        })
    return out


@dataclass(frozen=True)
class CocoImageMaps:
    """Per-pixel maps of one image decoded from COCO-format annotations."""

    image_id: int
    file_name: str
    labels: np.ndarray  # (H, W) uint8 COCO-Stuff ids, 0 = unlabeled
    instances: np.ndarray  # (H, W) int32, k = k-th annotation of this image (1-based), 0 = none


class CocoAnnotations:
    """COCO-format annotation JSON (polygons, RLE or uncompressed RLE) -> label/instance maps.

    Painting order: stuff before things, larger before smaller, so small things stay visible
    where annotations overlap (COCO things may overlap each other and stuff).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        try:
            with open(path, encoding="utf-8") as handle:
                doc = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"cannot read COCO annotation JSON: {err}", self.path) from None
        for key in ("images", "annotations"):
            if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
                raise InputError("missing or not a list", self.path, field=key)
        self.images: dict[int, dict[str, Any]] = {}
        for i, image in enumerate(doc["images"]):
            if not all(isinstance(image.get(k), int) for k in ("id", "width", "height")):
                raise InputError("needs integer id, width, height", self.path, field=f"images[{i}]")
            self.images[image["id"]] = image
        self._by_image: dict[int, list[dict[str, Any]]] = {i: [] for i in self.images}
        for i, ann in enumerate(doc["annotations"]):
            self._check_annotation(i, ann)
            self._by_image[ann["image_id"]].append(ann)

    def _check_annotation(self, index: int, ann: Any) -> None:
        where = f"annotations[{index}]"
        if not isinstance(ann, dict) or "segmentation" not in ann:
            raise InputError("missing segmentation", self.path, field=where)
        if ann.get("image_id") not in self.images:
            raise InputError(f"unknown image id {ann.get('image_id')!r}", self.path,
                             field=f"{where}.image_id")
        if ann.get("category_id") not in ID_TO_NAME:
            raise InputError(f"{ann.get('category_id')!r} is not a COCO-Stuff id (1-182)",
                             self.path, field=f"{where}.category_id")

    def __len__(self) -> int:
        return len(self.images)

    def _mask(self, ann: dict[str, Any], height: int, width: int) -> np.ndarray:
        seg = ann["segmentation"]
        if isinstance(seg, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg.get("counts"), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = seg
        with warnings.catch_warnings():  # pycocotools' Cython RLE class predates numpy 2's copy=
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            return mask_utils.decode([rle])[:, :, 0].astype(bool)

    def maps(self, image_id: int) -> CocoImageMaps:
        """Label and instance maps of one image (KeyError-free: unknown id -> InputError)."""
        if image_id not in self.images:
            raise InputError(f"image id {image_id} is not in this file", self.path)
        image = self.images[image_id]
        h, w = image["height"], image["width"]
        labels = np.zeros((h, w), np.uint8)
        instances = np.zeros((h, w), np.int32)
        anns = list(enumerate(self._by_image[image_id], start=1))
        anns.sort(key=lambda a: (a[1]["category_id"] < FIRST_STUFF_ID, -a[1].get("area", 0)))
        for k, ann in anns:
            mask = self._mask(ann, h, w)
            labels[mask] = ann["category_id"]
            instances[mask] = k
        return CocoImageMaps(image_id, str(image.get("file_name", "")), labels, instances)

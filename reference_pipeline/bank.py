"""Mask bank: per image its COCO-Stuff label bag and its masks, built from COCO-format annotations.

The bank is what TReCS retrieves from (Koh et al. 2021, sec. 3.2): for each training image the
set of labels it contains (for text retrieval) and one binary mask per annotation (for
composition). It is built once from a COCO-format annotation JSON (COCO-Stuff train/val, or
toyworld's ``annotations.json``) and an image folder, and stored compactly as one
``bank.json`` index holding, per image, its file, size and label bag, and per mask its label,
bbox and a compressed COCO RLE string (pycocotools' byte-string form, ~tens of bytes per mask).
Images are not copied: the index records their absolute folder.

Category ids: a category whose ``name`` is a COCO-Stuff label name (``"sky-other"``, spaces
allowed for hyphens) maps to that label's id; otherwise its ``id`` must already be a COCO-Stuff
id in 1..182. Annotations of the unlabeled ids (0, 183/255) are dropped.

>>> bank = build_bank("annotations.json", "images/", "bank/")   # doctest: +SKIP
>>> bank.labels_of(0)                                            # doctest: +SKIP
(7, 149, 157)
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from trecs_eval.atomic import atomic_write
from trecs_eval.data.coco_annotations import (
    check_annotation,
    check_image,
    check_polygons,
    check_rle,
    check_top_level,
)
from trecs_eval.data.coco_stuff import ID_TO_NAME, NAME_TO_ID
from trecs_eval.errors import InputError, TrecsEvalError

BANK_FORMAT_VERSION = 1
DECODED_CACHE_SIZE = 2048  # decoded masks kept in memory (about 130 MB at 256×256)
INDEX_NAME = "bank.json"


@dataclass(frozen=True)
class BankMask:
    """One mask of one bank image. ``bbox`` is (x0, y0, width, height) in the image's pixels."""

    image_index: int
    label: int
    bbox: tuple[int, int, int, int]
    area: int
    rle: str


@dataclass(frozen=True)
class BankImage:
    """One bank image: its file, size (pixels) and the indices of its masks in :attr:`MaskBank.masks`."""

    image_id: str
    file_name: str
    width: int
    height: int
    mask_indices: tuple[int, ...]


class MaskBank:
    """Images, their label bags and masks; masks are decoded lazily and cached per canvas size."""

    def __init__(self, images: Sequence[BankImage], masks: Sequence[BankMask], images_dir: Path,
                 source_sha256: str = "") -> None:
        self.images = tuple(images)
        self.masks = tuple(masks)
        self.images_dir = Path(images_dir)
        self.source_sha256 = source_sha256
        self._decoded: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._bboxes: dict[tuple[int, int, int], tuple[float, float, float, float] | None] = {}
        self._by_label: dict[int, np.ndarray] | None = None
        self._label_bags = tuple(
            tuple(sorted({self.masks[m].label for m in img.mask_indices})) for img in self.images
        )

    def __len__(self) -> int:
        return len(self.images)

    def labels_of(self, image_index: int) -> tuple[int, ...]:
        """Sorted distinct COCO-Stuff ids present in a bank image (its label bag)."""
        return self._label_bags[image_index]

    def image_path(self, image_index: int) -> Path:
        return self.images_dir / self.images[image_index].file_name

    def images_with_label(self, label: int) -> np.ndarray:
        """Sorted indices of the bank images holding ``label`` (an index built on first use: on
        COCO a label is in ~0.5 % of 118k images, so scanning a ranking for it is slow)."""
        if self._by_label is None:
            by_label: dict[int, list[int]] = {}
            for index, bag in enumerate(self._label_bags):
                for lab in bag:
                    by_label.setdefault(lab, []).append(index)
            self._by_label = {lab: np.asarray(ids, dtype=np.int64) for lab, ids in by_label.items()}
        return self._by_label.get(label, np.empty(0, dtype=np.int64))

    def masks_with_label(self, image_index: int, label: int) -> list[int]:
        """Indices (into :attr:`masks`) of an image's masks with a given label, in index order."""
        return [m for m in self.images[image_index].mask_indices if self.masks[m].label == label]

    def mask(self, mask_index: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """The mask as an H×W bool array, at the image's size or resized (nearest) to ``size=(H, W)``."""
        info = self.masks[mask_index]
        img = self.images[info.image_index]
        height, width = size if size is not None else (img.height, img.width)
        key = (mask_index, height, width)
        cached = self._decoded.get(key)
        if cached is not None:
            self._decoded.move_to_end(key)
        else:
            rle = {"size": [img.height, img.width], "counts": info.rle.encode("ascii")}
            with warnings.catch_warnings():
                # pycocotools' decode trips numpy 2's __array__(copy=...) deprecation; harmless here.
                warnings.simplefilter("ignore", DeprecationWarning)
                full = mask_utils.decode(rle).astype(bool)
            cached = full if (height, width) == full.shape else _resize_nearest(full, height, width)
            self._decoded[key] = cached
            if len(self._decoded) > DECODED_CACHE_SIZE:
                self._decoded.popitem(last=False)
        return cached

    def mask_bbox(self, mask_index: int, size: tuple[int, int]) -> tuple[float, float, float, float] | None:
        """(y0, x0, y1, x1) pixel-edge bbox of the mask resized to ``size`` (cached); None when a tiny
        mask vanishes at that size (nearest resizing of a few-pixel mask to a smaller canvas)."""
        key = (mask_index, *size)
        if key not in self._bboxes:
            mask = self.mask(mask_index, size)
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            self._bboxes[key] = (None if rows.size == 0 else
                                 (float(rows[0]), float(cols[0]), float(rows[-1] + 1), float(cols[-1] + 1)))
        return self._bboxes[key]

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Writes ``out_dir/bank.json`` atomically; returns its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        index = {
            "format_version": BANK_FORMAT_VERSION,
            "images_dir": str(self.images_dir.resolve()),
            "source_sha256": self.source_sha256,
            "images": [[i.image_id, i.file_name, i.width, i.height, list(i.mask_indices)]
                       for i in self.images],
            "masks": [[m.image_index, m.label, list(m.bbox), m.area, m.rle] for m in self.masks],
        }
        with atomic_write(out / INDEX_NAME, "w", encoding="utf-8") as handle:
            json.dump(index, handle, separators=(",", ":"))
        return out / INDEX_NAME

    @classmethod
    def load(cls, bank_dir: str | os.PathLike[str]) -> MaskBank:
        """Reads a bank written by :meth:`save` / :func:`build_bank`."""
        path = Path(bank_dir) / INDEX_NAME
        if not path.is_file():
            raise TrecsEvalError(f"no mask bank at {bank_dir} ({INDEX_NAME} missing)",
                                 hint="build one with `trecs-eval pipeline build-bank`")
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            if index.get("format_version") != BANK_FORMAT_VERSION:
                found = index.get("format_version")
                raise InputError(f"bank format {found!r}, expected {BANK_FORMAT_VERSION}", str(path),
                                 field="format_version")
            images = [BankImage(str(a), str(b), int(c), int(d), tuple(e))
                      for a, b, c, d, e in index["images"]]
            masks = [BankMask(int(a), int(b), tuple(c), int(d), str(e)) for a, b, c, d, e in index["masks"]]
        except (KeyError, ValueError, TypeError) as err:
            raise InputError(f"malformed mask bank index ({err})", str(path)) from err
        return cls(images, masks, Path(index["images_dir"]), index.get("source_sha256", ""))


def _resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize (pixel centres), as PIL's NEAREST does."""
    src_h, src_w = mask.shape
    rows = np.minimum(((np.arange(height) + 0.5) * src_h / height).astype(np.int64), src_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * src_w / width).astype(np.int64), src_w - 1)
    return mask[np.ix_(rows, cols)]


def _category_map(categories: list[dict[str, Any]], path: str) -> dict[int, int]:
    """COCO category id -> COCO-Stuff id (by name when the name is a label, else the id itself)."""
    mapping = {}
    for n, cat in enumerate(categories):
        cat_id = cat.get("id") if isinstance(cat, dict) else None
        if not isinstance(cat_id, int) or isinstance(cat_id, bool):
            raise InputError(f"category {n} has no integer id", path, field=f"categories[{n}].id")
        name = str(cat.get("name", "")).strip().lower().replace(" ", "-")
        if name in NAME_TO_ID:
            mapping[cat_id] = NAME_TO_ID[name]
        elif cat_id in ID_TO_NAME:
            mapping[cat_id] = cat_id
        elif cat_id not in (0, 183, 255):
            raise InputError(f"category {cat_id} ({cat.get('name')!r}) is neither a COCO-Stuff name nor id "
                             "1..182", path, field="categories")
    return mapping


def _encode_segmentation(segm: Any, height: int, width: int, path: str, ann_id: Any) -> dict[str, Any]:
    """Any COCO segmentation (polygons, uncompressed or compressed RLE) -> one compressed RLE.
    ``ann_id`` is the annotation's place in the file (``annotations[12]``); every field is checked
    (:mod:`trecs_eval.data.coco_annotations`) before pycocotools, which trusts its input, sees it."""
    try:
        if isinstance(segm, list):
            check_polygons(segm, height, width, path, ann_id)
            return mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
        if isinstance(segm, dict) and isinstance(segm.get("counts"), list):
            check_rle(segm, height, width, path, ann_id)
            return mask_utils.frPyObjects(segm, height, width)
        if isinstance(segm, dict) and isinstance(segm.get("counts"), str | bytes):
            check_rle(segm, height, width, path, ann_id)
            counts = segm["counts"]
            counts = counts.encode("ascii") if isinstance(counts, str) else counts
            return {"size": [height, width], "counts": counts}
    except (TypeError, ValueError) as err:
        raise InputError(f"unreadable segmentation ({err})", path, field=f"{ann_id}.segmentation") from err
    raise InputError("segmentation must be polygons or RLE", path, field=f"{ann_id}.segmentation")


Annotation = tuple[int, Any, Any, str]
"""(COCO-Stuff label id, segmentation, annotation id, source file) of one usable annotation."""


def _read_coco(path: Path) -> tuple[str, list[dict[str, Any]], dict[Any, list[Annotation]]]:
    """sha256 of the file, its images, and its usable annotations grouped by image id."""
    if not path.is_file():
        raise InputError("annotation file not found", str(path))
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        coco = json.loads(raw)
    except ValueError as err:
        raise InputError(f"not a COCO annotation JSON ({err})", str(path)) from None
    del raw  # the parsed file is what is large; the bytes need not live alongside it
    categories, coco_images, anns = check_top_level(coco, str(path))
    cat_map = _category_map(categories, str(path))
    by_image: dict[Any, list[Annotation]] = {}
    for n, ann in enumerate(anns):
        image_id, category_id = check_annotation(ann, n, str(path))
        label = cat_map.get(category_id)
        if label is not None:  # unlabeled / "other" categories carry no mask for the bank
            found = (label, ann["segmentation"], f"annotations[{n}]", str(path))
            by_image.setdefault(image_id, []).append(found)
    return digest, coco_images, by_image


Encoded = tuple[int, str, tuple[int, int, int, int], int]
"""(COCO-Stuff label id, compressed RLE counts, bbox, area) of one non-empty mask."""


def _encode_file(found: dict[Any, list[Annotation]], infos: dict[Any, tuple[str, int, int]], path: Path,
                 progress: bool) -> dict[Any, list[Encoded]]:
    """One file's annotations as compact RLE strings, empty masks dropped. ``found`` is emptied as
    it goes: on COCO train the parsed polygons of one file take gigabytes, so each file's are
    freed before the next file is read."""
    orphans = [img_id for img_id in found if img_id not in infos]
    if orphans:
        raise InputError(f"{len(orphans)} annotated image ids are in no images list (first: {orphans[0]!r})",
                         str(path), field="annotations.image_id")
    encoded: dict[Any, list[Encoded]] = {}
    with tqdm(total=len(found), desc=f"masks of {path.name}", unit="image", disable=not progress) as bar:
        while found:
            img_id, anns = found.popitem()
            _, height, width = infos[img_id]
            for label, segm, ann_id, origin in anns:
                rle = _encode_segmentation(segm, height, width, origin, ann_id)
                area = int(mask_utils.area(rle))
                if area > 0:
                    x0, y0, w, h = (round(float(v)) for v in mask_utils.toBbox(rle))
                    encoded.setdefault(img_id, []).append((label, rle["counts"].decode("ascii"),
                                                           (x0, y0, w, h), area))
            bar.update()
    return encoded


def _collect_masks(infos: dict[Any, tuple[str, int, int]],
                   encoded: dict[Any, list[Encoded]]) -> tuple[list[BankImage], list[BankMask]]:
    """Bank images (those with at least one non-empty mask) and their masks, in ``infos`` order."""
    images: list[BankImage] = []
    masks: list[BankMask] = []
    for img_id, (file_name, height, width) in infos.items():
        first = len(masks)
        for label, counts, bbox, area in encoded.pop(img_id, ()):
            masks.append(BankMask(len(images), label, bbox, area, counts))
        if len(masks) > first:
            images.append(BankImage(str(img_id), file_name, width, height, tuple(range(first, len(masks)))))
    return images, masks


def build_bank(annotations: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
               images_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
               progress: bool = False) -> MaskBank:
    """Builds a :class:`MaskBank` from COCO-format annotation JSON(s) and saves it to ``out`` (if given).

    Several files (e.g. COCO-Stuff's ``stuff_train2017.json`` and COCO's
    ``instances_train2017.json``) are merged by image id; an image's size and file name come from
    the first file listing it. Images without any usable mask are left out (they cannot give a
    mask or a label bag); empty masks are dropped. Bank order is the files' image order.
    ``source_sha256`` is the sha256 of the file (of the files' digests joined, for several).
    """
    single = isinstance(annotations, str | os.PathLike)
    paths = [Path(annotations)] if single else [Path(a) for a in annotations]  # type: ignore[arg-type,union-attr]
    digests: list[str] = []
    infos: dict[Any, tuple[str, int, int]] = {}
    encoded: dict[Any, list[Encoded]] = {}
    for path in paths:
        digest, coco_images, anns = _read_coco(path)
        digests.append(digest)
        for n, img in enumerate(coco_images):
            image_id, file_name, height, width = check_image(img, n, str(path))
            infos.setdefault(image_id, (file_name, height, width))
        del coco_images
        for img_id, found in _encode_file(anns, infos, path, progress).items():
            encoded.setdefault(img_id, []).extend(found)
    images, masks = _collect_masks(infos, encoded)
    if not images:
        raise InputError("no image has a usable mask; the bank would be empty", str(paths[0]),
                         field="annotations")
    source = digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()
    bank = MaskBank(images, masks, Path(images_dir).resolve(), source)
    if out is not None:
        bank.save(out)
    return bank

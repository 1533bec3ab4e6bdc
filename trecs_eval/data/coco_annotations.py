"""The shape of a COCO annotation JSON, checked before any of it reaches pycocotools.

pycocotools trusts its input: a NaN or a 1e12 polygon coordinate makes it allocate without bound
(the process is killed), a polygon of 4 numbers is read as a box, one of 2 raises a bare
``Exception``, a negative image size overflows, and a compressed RLE whose runs add up to more than
the image writes past its buffer when decoded. So every field is checked here first, and a bad
one is one line naming the file and the field (``annotations[12].category_id``): the published
COCO and COCO-Stuff files have none of these, so any of them means a damaged or foreign file, and
dropping the annotation would change the bank without a word.

>>> check_polygons([[0, 0, 10, 0, 10, 10]], 20, 20, "a.json", "annotations[0]")
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trecs_eval.errors import InputError

MAX_IMAGE_SIDE = 1 << 16  # pixels; a decoded mask is height x width bytes
POLYGON_MARGIN = 1.0  # a vertex may lie at most this many image sizes outside the image


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_top_level(coco: Any, path: str) -> tuple[list[Any], list[Any], list[Any]]:
    """(categories, images, annotations): a JSON object holding three lists."""
    if not isinstance(coco, dict):
        raise InputError(f"expected a JSON object, got {type(coco).__name__}", path)
    lists = []
    for key in ("categories", "images", "annotations"):
        if key not in coco:
            raise InputError("missing; not a COCO annotation JSON", path, field=key)
        if not isinstance(coco[key], list):
            raise InputError(f"must be a list, got {type(coco[key]).__name__}", path, field=key)
        lists.append(coco[key])
    return lists[0], lists[1], lists[2]


def check_image(image: Any, n: int, path: str) -> tuple[Any, str, int, int]:
    """(id, file_name, height, width) of ``images[n]``; sizes are integers in 1..65536."""
    where = f"images[{n}]"
    if not isinstance(image, dict):
        raise InputError(f"must be an object, got {type(image).__name__}", path, field=where)
    for key in ("id", "file_name", "height", "width"):
        if key not in image:
            raise InputError("missing", path, field=f"{where}.{key}")
    if not (_is_int(image["id"]) or isinstance(image["id"], str)):
        raise InputError(f"must be an integer or a string, got {image['id']!r}", path, field=f"{where}.id")
    if not isinstance(image["file_name"], str):
        raise InputError("must be a string", path, field=f"{where}.file_name")
    for key in ("height", "width"):
        if not _is_int(image[key]) or not 1 <= image[key] <= MAX_IMAGE_SIDE:
            raise InputError(f"must be an integer in 1..{MAX_IMAGE_SIDE}, got {image[key]!r}", path,
                             field=f"{where}.{key}")
    return image["id"], image["file_name"], image["height"], image["width"]


def check_annotation(ann: Any, n: int, path: str) -> tuple[Any, int]:
    """(image_id, category_id) of ``annotations[n]`` (an object with an integer category id)."""
    where = f"annotations[{n}]"
    if not isinstance(ann, dict):
        raise InputError(f"must be an object, got {type(ann).__name__}", path, field=where)
    for key in ("image_id", "category_id", "segmentation"):
        if key not in ann:
            raise InputError("missing", path, field=f"{where}.{key}")
    if not _is_int(ann["category_id"]):
        raise InputError(f"must be an integer, got {ann['category_id']!r}", path,
                         field=f"{where}.category_id")
    if not (_is_int(ann["image_id"]) or isinstance(ann["image_id"], str)):
        raise InputError(f"must be an integer or a string, got {ann['image_id']!r}", path,
                         field=f"{where}.image_id")
    return ann["image_id"], ann["category_id"]


def check_polygons(segm: list[Any], height: int, width: int, path: str, where: str) -> None:
    """Each polygon: an even number (>= 6) of finite coordinates near the image."""
    if not segm:
        raise InputError("an empty polygon list", path, field=f"{where}.segmentation")
    for k, poly in enumerate(segm):
        field = f"{where}.segmentation[{k}]"
        if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
            size = len(poly) if isinstance(poly, list) else type(poly).__name__
            raise InputError(f"a polygon needs an even number (>= 6) of coordinates, got {size}", path,
                             field=field)
        if not all(_is_number(v) for v in poly):
            raise InputError("polygon coordinates must be numbers", path, field=field)
        if not all(math.isfinite(v) for v in poly):
            raise InputError("a polygon coordinate is NaN or infinite", path, field=field)
        xs, ys = poly[0::2], poly[1::2]
        if (min(xs) < -POLYGON_MARGIN * width or max(xs) > (1 + POLYGON_MARGIN) * width
                or min(ys) < -POLYGON_MARGIN * height or max(ys) > (1 + POLYGON_MARGIN) * height):
            raise InputError(f"a polygon vertex lies far outside the {width}x{height} image", path,
                             field=field)


def rle_string_counts(counts: bytes) -> np.ndarray:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``, vectorised):
    6-bit groups from byte 48, bit 5 = more groups, bit 4 of the last group = sign, and run m > 2
    stored as a difference to run m - 2."""
    c = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if c.min() < 0 or c.max() > 63:
        raise ValueError("a character outside the RLE alphabet")
    ends = np.flatnonzero((c & 0x20) == 0)
    if ends.size == 0 or ends[-1] != c.size - 1:
        raise ValueError("the string ends inside a run length")
    starts = np.concatenate(([0], ends[:-1] + 1))
    k = np.arange(c.size) - np.repeat(starts, ends - starts + 1)
    if k.max() > 10:
        raise ValueError("a run length is too long")
    x = np.add.reduceat((c & 0x1f) << (5 * k), starts)
    x -= np.where(c[ends] & 0x10, 1 << (5 * (k[ends] + 1)), 0)
    runs = x.copy()
    runs[2::2] = np.cumsum(x[2::2])  # run 0 and run 2 are absolute; 4, 6, ... add to the one before
    runs[1::2] = np.cumsum(x[1::2])  # run 1 is absolute; 3, 5, ... add to the one before
    return runs


def check_rle(segm: dict[str, Any], height: int, width: int, path: str, where: str) -> None:
    """An RLE's size must be the image's and its runs must be >= 0 and add up to height x width."""
    field = f"{where}.segmentation"
    if segm.get("size") != [height, width]:
        raise InputError(f"RLE size {segm.get('size')!r} is not the image's [{height}, {width}]", path,
                         field=f"{field}.size")
    counts = segm.get("counts")
    if isinstance(counts, list):
        if not all(_is_int(v) and v >= 0 for v in counts):
            raise InputError("RLE counts must be integers >= 0", path, field=f"{field}.counts")
        runs = counts
    else:
        try:
            runs = rle_string_counts(counts.encode("ascii") if isinstance(counts, str) else counts).tolist()
        except (ValueError, UnicodeEncodeError, TypeError) as err:
            raise InputError(f"unreadable compressed RLE ({err})", path, field=f"{field}.counts") from None
        if any(v < 0 for v in runs):
            raise InputError("compressed RLE with a negative run", path, field=f"{field}.counts")
    if sum(runs) != height * width:
        raise InputError(f"RLE runs add up to {sum(runs)} pixels, the image has {height * width}", path,
                         field=f"{field}.counts")

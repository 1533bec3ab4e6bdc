"""Hand-built scenes for the reference-pipeline tests: tiny banks and narratives with known geometry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from trecs_eval.data.coco_stuff import NAME_TO_ID, coco_categories, masks_to_coco_annotations
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in pixels
Scene = Sequence[tuple[str, Box]]  # painted in order; later covers earlier


def scene_maps(scene: Scene, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Label map (uint8 ids) and instance map (each painted box is its own instance)."""
    labels = np.zeros((size, size), dtype=np.uint8)
    instances = np.zeros((size, size), dtype=np.int32)
    for k, (name, (x0, y0, x1, y1)) in enumerate(scene, start=1):
        labels[y0:y1, x0:x1] = NAME_TO_ID[name]
        instances[y0:y1, x0:x1] = k
    return labels, instances


def scene_colour(image_index: int, label: int) -> np.ndarray:
    """A distinct RGB colour per (image, label), so collage tests can tell sources apart."""
    rgb = [(label * 41 + 17) % 256, (image_index * 67 + 29) % 256, (label * 13 + image_index * 7) % 256]
    return np.array(rgb, dtype=np.uint8)


def write_bank_dir(root: Path, scenes: Sequence[Scene], size: int = 64) -> Path:
    """``root/images/{i}.png`` + ``root/annotations.json`` (COCO RLE) for the scenes; returns root."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, scene in enumerate(scenes):
        labels, instances = scene_maps(scene, size)
        rgb = np.zeros((size, size, 3), dtype=np.uint8)
        for label in np.unique(labels):
            rgb[labels == label] = scene_colour(i, int(label))
        Image.fromarray(rgb).save(root / "images" / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": size, "height": size})
        annotations += masks_to_coco_annotations(labels, instances, i,
                                                 first_annotation_id=len(annotations) + 1)
    doc = {"images": images, "annotations": annotations, "categories": coco_categories()}
    (root / "annotations.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def make_narrative(item_id: str,
                   utterances: Sequence[tuple[str, Sequence[tuple[float, float]]]]) -> Narrative:
    """Utterance ``i`` is spoken during [i, i + 0.9] s and its points are drawn inside that span."""
    timed, segment = [], []
    for i, (text, points) in enumerate(utterances):
        timed.append(TimedUtterance(text, float(i), i + 0.9))
        for k, (x, y) in enumerate(points):
            segment.append(TracePoint(x, y, i + 0.8 * (k + 1) / (len(points) + 1)))
    image_id, annotator = item_id.rsplit("_", 1)
    caption = " ".join(text for text, _ in utterances)
    return Narrative("test", image_id, int(annotator), caption, tuple(timed), (tuple(segment),))


def square_points(x0: float, y0: float, x1: float, y1: float, n: int = 5) -> list[tuple[float, float]]:
    """Points on the border of a normalized box (its convex hull is the box)."""
    t = np.linspace(0.0, 1.0, n)
    pts = [(x0 + (x1 - x0) * a, y0) for a in t] + [(x1, y0 + (y1 - y0) * a) for a in t]
    pts += [(x1 - (x1 - x0) * a, y1) for a in t] + [(x0, y1 - (y1 - y0) * a) for a in t]
    return pts

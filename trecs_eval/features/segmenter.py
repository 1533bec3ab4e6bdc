"""Segmenters: image -> COCO-Stuff label map (H×W uint8, ids of :mod:`trecs_eval.data.coco_stuff`).

With a segmenter, the canvas metrics (``trace_canvas_accuracy``, ``canvas_pixel_accuracy``,
``canvas_miou``) and :func:`trecs_eval.metrics.trace_hit.trace_hit_rate` can score *any*
system's generated images, not only systems that draw a label canvas.

The :class:`Segmenter` protocol: ``identity`` (an :class:`ExtractorIdentity`, the cache key),
``output_ids`` (the COCO-Stuff ids it can output), ``canonical(label)`` (the id it reports for a
label: itself, or the representative of a merged class) and ``segment(path) -> (H, W) uint8``
at the image's own resolution, 0 = unlabeled. :func:`segment_images` adds the
content-addressed cache (one forward pass per distinct image content and segmenter).

* :class:`OracleSegmenter` (toyworld): returns the *gold* map of an image it knows, matched by
  decoded pixels (re-encoding a PNG does not matter), so real images through it score the known
  value; an image it does not know is all ``unlabeled`` (counted in ``unknown_images``), or an
  error with ``unknown="error"``.
* :class:`Mask2FormerSegmenter`: a ``transformers`` Mask2Former checkpoint with COCO panoptic's
  133 classes (e.g. ``facebook/mask2former-swin-large-coco-panoptic`` saved to a local
  directory), loaded with ``local_files_only=True``. Semantic output = the checkpoint image
  processor's ``post_process_semantic_segmentation`` at the image size; each class index is mapped
  by its ``id2label`` name through :mod:`trecs_eval.data.coco_panoptic` (merged classes -> their
  representative; dropped COCO-Stuff classes are never output).

    seg = Mask2FormerSegmenter("/models/mask2former-coco-panoptic", device="cuda")
    maps = segment_images(seg, paths)            # list of (H, W) uint8 COCO-Stuff maps
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from trecs_eval.data.coco_panoptic import PANOPTIC_OUTPUT_IDS, canonical_id, panoptic_to_coco_stuff_id
from trecs_eval.data.coco_stuff import LABELS, read_label_map
from trecs_eval.errors import ConfigError, InputError, MissingWeightsError
from trecs_eval.features.cache import FeatureCache, content_key_for_file, content_key_for_pixels
from trecs_eval.features.identity import ExtractorIdentity, folder_sha256, library_versions, sha256_file
from trecs_eval.features.images import decode_rgb

ALL_COCO_STUFF_IDS = frozenset(lab.id for lab in LABELS)


class Segmenter(Protocol):
    """Image file -> (H, W) uint8 COCO-Stuff label map at the image's resolution (0 = unlabeled)."""

    identity: ExtractorIdentity
    output_ids: frozenset[int]

    def canonical(self, label: int) -> int:
        """The id this segmenter reports for COCO-Stuff ``label`` (merged classes: their representative)."""
        ...

    def segment(self, path: str) -> np.ndarray:
        ...


def segment_images(segmenter: Segmenter, paths: Sequence[str | os.PathLike[str]],
                   cache: FeatureCache | None = None) -> list[np.ndarray]:
    """Label maps of ``paths`` in order; cached by (image bytes, segmenter identity)."""
    files = [str(p) for p in paths]
    keys = [content_key_for_file(f) for f in files]
    ident = segmenter.identity.key()
    found = {k: v["labels"] for k, v in cache.get_many(ident, keys).items()} if cache else {}
    for key, path in zip(keys, files, strict=True):
        if key not in found:
            labels = np.asarray(segmenter.segment(path))
            if labels.ndim != 2:
                raise InputError(f"segmenter returned shape {labels.shape}, not (H, W)", path=path)
            found[key] = labels
            if cache:  # label ids <= 255 are exact in float32, the cache's array type
                cache.put_many(ident, {key: {"labels": labels.astype(np.float32)}})
    return [np.asarray(found[k]).astype(np.uint8) for k in keys]


GoldPair = tuple[str | os.PathLike[str], str | os.PathLike[str], bool]
"""(image path, gold label map path, zero_based) — zero_based for the released stuffthingmaps."""


class OracleSegmenter:
    """Returns the gold map of a known image (see the module doc). Build it from (image, gold) pairs."""

    output_ids = ALL_COCO_STUFF_IDS

    def __init__(self, pairs: Iterable[GoldPair],
                 unknown: Literal["unlabeled", "error"] = "unlabeled") -> None:
        if unknown not in ("unlabeled", "error"):
            raise ConfigError(f"unknown={unknown!r}; available: unlabeled, error")
        self.unknown, self.unknown_images = unknown, 0
        self._gold: dict[str, tuple[Path, bool]] = {}
        for image, gold, zero_based in pairs:
            self._gold[content_key_for_pixels(decode_rgb(image))] = (Path(gold), bool(zero_based))
        if not self._gold:
            raise ConfigError("the oracle segmenter needs at least one (image, gold map) pair")
        digest = hashlib.sha256()
        for key in sorted(self._gold):  # identity = what it knows: pixels -> gold map bytes
            path, zero_based = self._gold[key]
            digest.update(f"{key}:{sha256_file(str(path))}:{int(zero_based)}\n".encode())
        self.identity = ExtractorIdentity(
            name="oracle-gold-maps", weights_sha256=digest.hexdigest(), layers=("coco_stuff_ids",),
            preprocessing="none", dtype="uint8", extra={"images_known": len(self._gold), "unknown": unknown})

    @classmethod
    def from_toyworld(cls, root: str | os.PathLike[str],
                      unknown: Literal["unlabeled", "error"] = "unlabeled") -> OracleSegmenter:
        """Every scene of a toyworld directory: ``images/`` and ``images_shifted/`` with ``segmentation/``."""
        base = Path(root)
        pairs = [(img, base / "segmentation" / img.name, False)
                 for sub in ("images", "images_shifted") if (base / sub).is_dir()
                 for img in sorted((base / sub).glob("*.png"))
                 if (base / "segmentation" / img.name).is_file()]
        return cls(pairs, unknown)

    def canonical(self, label: int) -> int:
        return int(label)

    def segment(self, path: str) -> np.ndarray:
        rgb = decode_rgb(path)
        known = self._gold.get(content_key_for_pixels(rgb))
        if known is None:
            if self.unknown == "error":
                raise InputError("image unknown to the oracle segmenter (not a gold-annotated image)",
                                 path=str(path), field="image")
            self.unknown_images += 1
            return np.zeros(rgb.shape[:2], np.uint8)
        labels = read_label_map(known[0], zero_based=known[1])
        if labels.shape != rgb.shape[:2]:
            raise InputError(f"gold map {labels.shape} does not match image {rgb.shape[:2]}",
                             path=str(known[0]))
        return labels


def label_lookup(id2label: dict[int, str]) -> np.ndarray:
    """(n_classes,) uint8: model class index -> COCO-Stuff id, by name (ConfigError on an unknown name)."""
    lut = np.zeros(len(id2label), np.uint8)
    for index, name in id2label.items():
        try:
            lut[int(index)] = panoptic_to_coco_stuff_id(name)
        except KeyError as err:
            raise ConfigError(f"segmenter class {index} {name!r} is not a COCO panoptic class; only "
                              "checkpoints with COCO panoptic's 133 classes are supported") from err
    return lut


class Mask2FormerSegmenter:
    """A local ``transformers`` Mask2Former (COCO panoptic) checkpoint directory; see the module doc."""

    output_ids = PANOPTIC_OUTPUT_IDS

    def __init__(self, model_dir: str | os.PathLike[str], device: str = "auto") -> None:
        from trecs_eval.device import resolve_device

        self.model_dir = Path(model_dir).expanduser()
        if not (self.model_dir / "config.json").is_file():
            raise MissingWeightsError(f"no segmenter checkpoint (config.json) in {self.model_dir}",
                                      hint="save one with save_pretrained() (model and image processor) "
                                           "and pass its directory")
        self.device = resolve_device(device)
        self._model, self._processor = self._load()
        self.lut = label_lookup(dict(self._model.config.id2label))
        import transformers

        self.identity = ExtractorIdentity(
            name=f"transformers/{type(self._model).__name__}",
            weights_sha256=folder_sha256(self.model_dir),
            layers=("semantic_segmentation",), preprocessing=f"{type(self._processor).__name__}:checkpoint",
            dtype="uint8", versions={**library_versions(), "transformers": transformers.__version__},
            extra={"label_space": "coco-panoptic-133 -> coco-stuff-182", "n_classes": len(self.lut)})

    def _load(self) -> tuple[object, object]:
        from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

        try:
            model = Mask2FormerForUniversalSegmentation.from_pretrained(self.model_dir, local_files_only=True)
            processor = AutoImageProcessor.from_pretrained(self.model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"cannot load a Mask2Former checkpoint: {str(err)[:300]}",
                             path=str(self.model_dir), field="segmenter") from err
        return model.eval().to(self.device), processor

    def canonical(self, label: int) -> int:
        return canonical_id(label)

    def segment(self, path: str) -> np.ndarray:
        import torch

        rgb = decode_rgb(path)
        inputs = self._processor(images=[rgb], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self._model(**inputs)
        semantic = self._processor.post_process_semantic_segmentation(
            outputs, target_sizes=[rgb.shape[:2]])[0]
        return self.lut[semantic.cpu().numpy().astype(np.int64)]

"""CLIP embeddings of image regions and short texts: the ``clip_crops`` feature space.

The trace-local CLIP metric scores crops of a system's images against utterances with the run's
CLIP: the same :class:`~trecs_eval.features.clip.ClipEmbedder` (weights, preprocessing: open_clip's
transform of the crop as if it were a whole image) and the same cache. A crop's cache key is its
content: ``sha256("crop", sha256(image file), pixel box)``, under the image identity, so a renamed
file hits and a changed image or box misses. Texts are keyed by their exact string, as
narrative chunks are.

``extract(paths)`` returns a :class:`CropSource`; the metric asks it for the crops it needs
(``source.crops(rows, boxes)``) and the texts (``source.texts(strings)``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from trecs_eval.data.trace_regions import Box, box_pixels
from trecs_eval.features.cache import content_key_for_file, content_key_for_text
from trecs_eval.features.decode import decode_rgb

PixelBox = tuple[int, int, int, int]


def crop_key(file_key: str, box: PixelBox) -> str:
    """The cache key of the crop ``box`` (left, top, right, bottom pixels) of the image ``file_key``."""
    return hashlib.sha256(f"crop\0{file_key}\0{','.join(map(str, box))}".encode()).hexdigest()


def image_size(path: str) -> tuple[int, int]:
    """(width, height) from the file header (no decode)."""
    with Image.open(path) as image:
        return image.size


class CropSource:
    """The crops and texts of one image set, embedded on demand with one CLIP model and cache."""

    def __init__(self, embedder: Any, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.embedder, self.paths = embedder, [str(p) for p in paths]
        self._file_keys: dict[str, str] = {}
        self._sizes: dict[str, tuple[int, int]] = {}

    def pixel_box(self, row: int, box: Box) -> PixelBox:
        """The pixels the normalized ``box`` covers on image ``row``."""
        path = self.paths[row]
        if path not in self._sizes:
            self._sizes[path] = image_size(path)
        return box_pixels(box, *self._sizes[path])

    def crops(self, rows: Sequence[int], boxes: Sequence[Box]) -> np.ndarray:
        """(K, D) float32 L2-normalized embeddings of crop ``boxes[k]`` of image ``rows[k]``."""
        requests = [(self.paths[r], self.pixel_box(r, b)) for r, b in zip(rows, boxes, strict=True)]
        for path, _ in requests:
            if path not in self._file_keys:
                self._file_keys[path] = content_key_for_file(path)
        keys = [crop_key(self._file_keys[p], b) for p, b in requests]
        return self.embedder._cached(keys, dict(zip(keys, requests, strict=True)), "image", self._embed_crops)

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        """(K, D) float32 L2-normalized embeddings of short texts (CLIP's context cuts longer ones)."""
        keys = [content_key_for_text(t) for t in texts]
        return self.embedder._cached(keys, dict(zip(keys, texts, strict=True)), "text",
                                     self.embedder._embed_texts)

    def _embed_crops(self, requests: Sequence[tuple[str, PixelBox]]) -> np.ndarray:
        emb = self.embedder
        out, decoded = [], {}
        for start in range(0, len(requests), emb.batch_size):
            batch = requests[start:start + emb.batch_size]
            pixels = []
            for path, (left, top, right, bottom) in batch:
                if path not in decoded:  # requests come grouped by image: keep the current one only
                    decoded = {path: decode_rgb(path)}
                pixels.append(emb.preprocess(Image.fromarray(decoded[path][top:bottom, left:right])))
            with torch.inference_mode():
                features = emb.model.encode_image(torch.stack(pixels).to(emb.device))
            out.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy())
            emb.forward_batches["image"] += 1
        return np.concatenate(out)


class ClipCropSpace:
    """``clip_crops``: the ``clip`` space's model (same identity), handing out crop sources."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.identity = embedder.identity

    def extract(self, paths: Sequence[str | Path]) -> CropSource:
        return CropSource(self.embedder, paths)

    def arrays(self, features: Any) -> dict[str, np.ndarray]:
        return {}  # crops are per utterance, not per item: their scores go to samples.parquet

"""DINOv2 image features for FD-DINOv2 (and PRDC in DINOv2 space), cached by content.

FD-DINOv2 (Stein et al., NeurIPS 2023, "dgm-eval") is the Fréchet distance of
:mod:`trecs_eval.metrics.fid` computed on these features instead of Inception's:

    fd, info = features_to_fid(DinoV2Extractor(...).extract(gen).features,
                               DinoV2Extractor(...).extract(ref).features)

Features: the class token after the final LayerNorm (dgm-eval's ``DINOv2Encoder`` returns the
``torch.hub`` model's output, ``x_norm_clstoken``; timm's ``num_classes=0, global_pool='token'``
is the same tensor), 1024-d for ViT-L/14, float32.

Preprocessing ``dgm-eval`` (dgm-eval's default, ``clean_resize=False``): decode to RGB, PIL
bicubic resize of the whole image to 224x224 (no crop: the aspect ratio is not kept, as
dgm-eval's ``Resize((224, 224))`` on a PIL image), scale to [0, 1], ImageNet mean/std
normalization. Written into the identity's ``preprocessing``.

Backbone and weights: :mod:`trecs_eval.features.dinov2_weights`. Only ``arch="vitl14"`` with
real weights defines FD-DINOv2; the identity records ``extra["backbone"]`` and
``extra["defines_fd_dinov2"]`` so a ViT-S/14 or random-weights number is never mistaken for it.

Interface::

    ext = DinoV2Extractor(arch="vitl14", weights=None, device="cuda")   # release weights
    ext = DinoV2Extractor(arch="vits14", uncalibrated=True, seed=0)       # tests / demo
    feats = ext.extract(paths)        # DinoV2Features: .features (n, D) float32, .identity
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from trecs_eval.device import resolve_device
from trecs_eval.errors import ConfigError
from trecs_eval.features.cache import FeatureCache, image_files_and_keys
from trecs_eval.features.dinov2_weights import (  # normalize_batch lives there: calibration uses it too
    ARCHS,
    DEFINING_ARCH,
    INPUT_PX,
    POS_EMBED_OFFSET,
    load_dinov2,
    normalize_batch,
    resolve_dinov2_weights,
)
from trecs_eval.features.identity import ExtractorIdentity, device_extra, library_versions
from trecs_eval.features.images import decode_rgb
from trecs_eval.features.inception import keep_malloc_buffers

PREPROCESSING = f"dgm-eval:pil-bicubic-{INPUT_PX}x{INPUT_PX}-no-crop,imagenet-mean-std"
LAYER = "cls_token_after_norm"
DEFAULT_BATCH_SIZE = 16


def preprocess_dgm_eval(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, 224, 224) float32 in [0, 1] (PIL bicubic, whole image, no crop)."""
    resized = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).resize((INPUT_PX, INPUT_PX), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def dinov2_identity(arch: str, weights_sha256: str, source: str, uncalibrated: bool, seed: int,
                    device: str = "cpu") -> ExtractorIdentity:
    """Identity of a DINOv2 extractor: weights by sha256, backbone, preprocessing, versions."""
    import timm

    return ExtractorIdentity(
        name=f"dinov2/{ARCHS[arch]}", weights_sha256=weights_sha256, layers=(LAYER,),
        preprocessing=PREPROCESSING, dtype="float32",
        versions={**library_versions(), "timm": timm.__version__}, uncalibrated=uncalibrated,
        extra={"backbone": arch, "input_px": INPUT_PX, "source": source,
               "pos_embed": f"dinov2-bicubic-offset{POS_EMBED_OFFSET}-no-antialias",
               "defines_fd_dinov2": arch == DEFINING_ARCH and not uncalibrated,
               "seed": seed if uncalibrated else None, **device_extra(device)})


@dataclass(frozen=True)
class DinoV2Features:
    """Features of a set of images, in the order of ``paths``."""

    features: np.ndarray  # (n, D) float32
    paths: tuple[str, ...]
    identity: ExtractorIdentity
    cache_hits: int = 0
    cache_misses: int = 0

    def __len__(self) -> int:
        return len(self.paths)


class DinoV2Extractor:
    """Resolves weights at construction, loads the model lazily, caches rows by image content."""

    def __init__(self, *, arch: str = DEFINING_ARCH, weights: str | None = None, uncalibrated: bool = False,
                 seed: int = 0, device: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                 cache: FeatureCache | None = None, progress: bool = True) -> None:
        if batch_size < 1:
            raise ConfigError(f"DINOv2 batch size must be >= 1, got {batch_size}")
        self.arch, self.batch_size, self.progress = arch, batch_size, progress
        self.weights = resolve_dinov2_weights(weights, arch, uncalibrated, seed)
        self.device = resolve_device(device)
        self.cache = cache if cache is not None else FeatureCache()
        self.identity = dinov2_identity(arch, self.weights.sha256, self.weights.source,
                                        self.weights.uncalibrated, seed, self.device)
        self.forward_batches = 0
        self._model: torch.nn.Module | None = None

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = load_dinov2(self.weights, self.arch, self.device)
        return self._model

    def forward(self, images: torch.Tensor) -> np.ndarray:
        """(B, 3, 224, 224) float in [0, 1] -> (B, D) float32 features."""
        with torch.inference_mode():
            out = self.model(normalize_batch(images).to(self.device))
        self.forward_batches += 1
        return out.float().cpu().numpy()

    def extract(self, paths: Sequence[str | os.PathLike[str]]) -> DinoV2Features:
        """Features for ``paths`` (cache first; one forward pass per distinct content)."""
        files, keys = image_files_and_keys(paths, "extract DINOv2 features from")
        ident = self.identity.key()
        rows = {k: v["features"] for k, v in self.cache.get_many(ident, keys).items()}
        hits = sum(k in rows for k in keys)
        todo = {k: f for k, f in zip(keys, files, strict=True) if k not in rows}
        if todo:
            rows.update(self._compute(list(todo.items()), ident))
        return DinoV2Features(np.stack([rows[k] for k in keys]).astype(np.float32), tuple(files),
                              self.identity, hits, len(keys) - hits)

    def _compute(self, todo: list[tuple[str, str]], ident: str) -> dict[str, np.ndarray]:
        keep_malloc_buffers()
        out: dict[str, np.ndarray] = {}
        starts = range(0, len(todo), self.batch_size)
        for start in tqdm(starts, desc=f"DINOv2 {self.arch}", unit="batch", disable=not self.progress):
            batch = todo[start:start + self.batch_size]
            pixels = torch.stack([preprocess_dgm_eval(decode_rgb(path)) for _, path in batch])
            feats = self.forward(pixels)
            fresh = {key: row for (key, _), row in zip(batch, feats, strict=True)}
            self.cache.put_many(ident, {k: {"features": v} for k, v in fresh.items()})
            out.update(fresh)
        return out

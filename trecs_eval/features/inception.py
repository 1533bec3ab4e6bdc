"""Inception-v3 features for FID, KID and IS from ONE forward pass, cached by content.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF FID graph ported to
PyTorch), loaded from a weights file (see :mod:`trecs_eval.features.weights`). Per image it gives
``pool`` = the 2048-d pool3 activations (FID, KID) and ``logits`` = the 1008-d
``logits_unbiased`` (IS; no bias, as the TF graph). Images are preprocessed by the named mode
(:mod:`trecs_eval.features.images`) in loader workers; the rest of the forward pass is
torch-fidelity's, step for step: ``x = (x - 128) / 128``, the Inception blocks, average pool,
``logits = pool @ fc.weight.T``, one image at a time (:func:`row_logits`).

Weights in NVIDIA's TorchScript format (the ``weights`` extra) are re-keyed into the same
network (:mod:`trecs_eval.features.weight_files`); they have no classifier, so ``logits`` is then
(n, 0) and IS is unavailable. Every weights file is read without unpickling code.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from tqdm import tqdm

from trecs_eval.device import resolve_device
from trecs_eval.errors import InputError
from trecs_eval.features.cache import FeatureCache, content_key_for_file
from trecs_eval.features.calibration import inception_skeleton
from trecs_eval.features.identity import INCEPTION_LAYOUTS, ExtractorIdentity, device_extra
from trecs_eval.features.images import ImageReport, image_batches, inspect_images
from trecs_eval.features.weight_files import (
    TORCHSCRIPT_FORMAT,
    load_state_dict_file,
    nvidia_to_torch_fidelity,
    read_torchscript_tensors,
)
from trecs_eval.features.weights import ResolvedWeights, resolve_inception_weights

EXTRACTOR_NAME = "inception-v3-compat"  # torch-fidelity's name for this network
LAYERS = ("2048", "logits_unbiased")
POOL_DIM, LOGITS_DIM = 2048, 1008
_BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
           "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
           "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
           "AvgPool")


def keep_malloc_buffers() -> None:
    """Stop glibc from handing large buffers back to the kernel after every batch.

    Otherwise 20-40 % of CPU inference time goes to page faults (12 -> 16 img/s measured, same
    results). mallopt(M_TRIM_THRESHOLD=-1, 2 GiB - 1: the largest int, i.e. practically never
    trim), (M_TOP_PAD=-2, 1 GB), (M_MMAP_MAX=-4, 0: no mmap'd chunks, so nothing is unmapped).
    A no-op where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    for param, value in ((-1, (1 << 31) - 1), (-2, 1_000_000_000), (-4, 0)):
        libc.mallopt(ctypes.c_int(param), ctypes.c_int(value))


def memory_format(layout: str) -> torch.memory_format:
    """The tensor layout of the forward pass: ``nchw`` (default) or the ``nhwc`` opt-in.

    On CPU, oneDNN's NHWC (channels_last) convolutions run the same network 1.37x faster (12.4 ->
    17.0 img/s at batch 32 on a 2-core AMD EPYC) and only reorder float sums. With the real FID
    weights FID moved by 1e-8 to 4e-7 relative (``tests/reference/test_forward_mode_parity.py``),
    but with calibrated random weights (which have the classifier) IS moved by 1.7e-6 against
    torch-fidelity's 1e-9 tolerance, and FID by 1.7e-6 at 64 vs 64 images: by the default-mode
    rule it is an explicit opt-in, and the identity records it (``extra["layout"]``).
    """
    if layout not in INCEPTION_LAYOUTS:
        raise InputError(f"unknown Inception layout {layout!r}; available: {', '.join(INCEPTION_LAYOUTS)}",
                         field="inception_layout")
    return torch.channels_last if layout == "nhwc" else torch.contiguous_format


def select_device(device: str) -> torch.device:
    """The torch device for ``device`` (see :func:`trecs_eval.device.resolve_device`)."""
    return torch.device(resolve_device(device))


def inception_state_dict(weights: ResolvedWeights, template: dict[str, torch.Tensor]
                         ) -> dict[str, torch.Tensor]:
    """The torch-fidelity state dict of a weights file of either format (no code unpickled)."""
    path = weights.path
    if weights.format == TORCHSCRIPT_FORMAT:
        return nvidia_to_torch_fidelity(read_torchscript_tensors(path), template, path)
    return load_state_dict_file(path, field="inception_weights", what="Inception weights")


def load_inception(weights: ResolvedWeights, device: torch.device) -> FeatureExtractorInceptionV3:
    """torch-fidelity's Inception with the given weights (``fc`` absent for NVIDIA's format)."""
    model = inception_skeleton()
    state = inception_state_dict(weights, model.state_dict())
    try:
        result = model.load_state_dict(state, strict=weights.has_classifier)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise InputError(f"not an Inception-v3 (torch-fidelity) state dict: {detail}",
                         path=str(weights.path), field="inception_weights") from err
    if any(not k.startswith("fc.") for k in result.missing_keys) or result.unexpected_keys:
        raise InputError("not an Inception-v3 state dict", path=str(weights.path),
                         field="inception_weights")
    return model.to(device)


def inception_forward(model: FeatureExtractorInceptionV3, x: torch.Tensor, logits: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, 299, 299) float in [0, 255] -> (pool (B, 2048), logits_unbiased (B, 1008)).

    ``logits=False`` (weights without a classifier) gives logits of shape (B, 0).
    """
    x = (x - 128) / 128
    for name in _BLOCKS:
        x = getattr(model, name)(x)
    pool = torch.flatten(x, 1)
    return pool, (row_logits(pool, model.fc.weight) if logits else pool.new_zeros((len(pool), 0)))


def row_logits(pool: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``pool @ weight.T`` one image at a time. A batched matmul rounds each row differently with
    the batch's size and the row's place in it (up to 1e-4 on these logits, measured), so an image's
    logits, and IS, would depend on which images shared its batch: on where a killed run was cut,
    on what the cache already held. A matrix-vector product per row does not (~1 % of a forward)."""
    if not len(pool):
        return pool.new_zeros((0, weight.shape[0]))
    return torch.stack([torch.mv(weight, row) for row in pool])


@dataclass
class InceptionFeatures:
    """Features of a set of images, in the order of ``paths``. float32 as the network gives."""

    pool: np.ndarray  # (n, 2048)
    logits: np.ndarray  # (n, 1008) logits_unbiased
    paths: tuple[str, ...]
    identity: ExtractorIdentity
    report: ImageReport = field(default_factory=ImageReport)
    cache_hits: int = 0
    cache_misses: int = 0

    def __len__(self) -> int:
        return len(self.paths)


class InceptionExtractor:
    """Loads the weights lazily, extracts features for image files, reads/writes the cache."""

    def __init__(self, *, inception_weights: str | None = None, uncalibrated: bool = False,
                 seed: int = 0, preprocessing: str = "tf1", device: str = "auto",
                 batch_size: int = 32, num_workers: int = 1, progress: bool = True,
                 cache: FeatureCache | None = None, layout: str = "nchw") -> None:
        self.weights = resolve_inception_weights(inception_weights, uncalibrated, seed)
        self.device = select_device(device)
        self.preprocessing, self.layout = preprocessing, memory_format(layout)
        self.batch_size, self.num_workers, self.progress = batch_size, num_workers, progress
        self.cache = cache if cache is not None else FeatureCache()
        self.identity = ExtractorIdentity(
            name=EXTRACTOR_NAME, weights_sha256=self.weights.sha256,
            layers=LAYERS if self.weights.has_classifier else LAYERS[:1],
            preprocessing=preprocessing, dtype="float32", uncalibrated=self.weights.uncalibrated,
            # the default identity is unchanged (caches stay valid); the opt-in is named
            extra={"weights_format": self.weights.format, **({"layout": layout} if layout != "nchw" else {}),
                   **device_extra(self.device)})
        self._model: FeatureExtractorInceptionV3 | None = None

    @property
    def model(self) -> FeatureExtractorInceptionV3:
        if self._model is None:
            self._model = load_inception(self.weights, self.device).to(memory_format=self.layout)
        return self._model

    def extract(self, paths: Sequence[str | os.PathLike[str]]) -> InceptionFeatures:
        """Features for ``paths`` (cache first; the forward pass only for new content)."""
        paths = [str(p) for p in paths]
        report = inspect_images(paths)
        keys = [content_key_for_file(p) for p in paths]
        ident = self.identity.key()
        rows = self.cache.get_many(ident, keys)
        hits = sum(key in rows for key in keys)
        # one forward pass per distinct content, even if two files hold the same bytes
        todo = {key: path for key, path in zip(keys, paths, strict=True) if key not in rows}
        if todo:
            rows.update(self._compute(list(todo.items()), ident))
        width = LOGITS_DIM if self.weights.has_classifier else 0
        return InceptionFeatures(
            pool=np.stack([rows[k]["pool"] for k in keys]) if keys else np.zeros((0, POOL_DIM)),
            logits=(np.stack([rows[k]["logits"] for k in keys]) if keys and width
                    else np.zeros((len(keys), width), np.float32)),
            paths=tuple(paths), identity=self.identity, report=report,
            cache_hits=hits, cache_misses=len(keys) - hits)

    def _compute(self, todo: list[tuple[str, str]], ident: str) -> dict[str, dict[str, np.ndarray]]:
        """Forward pass for (content key, path) pairs; each batch is cached as soon as it is done.

        Results go into arrays allocated once, before the loop: with glibc's buffers kept
        (:func:`keep_malloc_buffers`) a small array left alive after each batch pins the top of
        the heap above that batch's freed activations, and the heap grew by ~0.4 MB per image
        (5.6 GB peak RSS for 10,000 images; flat at ~1.7 GB this way).
        """
        keep_malloc_buffers()
        if self.device.type == "cpu":
            torch.set_num_threads(len(os.sched_getaffinity(0)))
        model, width = self.model, LOGITS_DIM if self.weights.has_classifier else 0
        pool_all = np.empty((len(todo), POOL_DIM), np.float32)
        logits_all = np.empty((len(todo), width), np.float32)
        loader = image_batches([p for _, p in todo], self.preprocessing, self.batch_size,
                               self.num_workers)
        with torch.inference_mode(), tqdm(total=len(todo), unit="img", desc="Inception",
                                          disable=not self.progress) as bar:
            for indices, images, errors in loader:
                failed = [e for e in errors if e]
                if failed:
                    raise InputError(failed[0])
                x = images.to(self.device, memory_format=self.layout)
                pool, logits = inception_forward(model, x, logits=width > 0)
                rows = indices.numpy()
                pool_all[rows], logits_all[rows] = pool.float().cpu().numpy(), logits.float().cpu().numpy()
                self.cache.put_many(ident, {todo[i][0]: _row(pool_all, logits_all, i) for i in rows})
                bar.update(len(rows))
        return {key: _row(pool_all, logits_all, i) for i, (key, _) in enumerate(todo)}


def _row(pool: np.ndarray, logits: np.ndarray, i: int) -> dict[str, np.ndarray]:
    """Row ``i`` as a cache entry (no ``logits`` for weights without a classifier)."""
    return {"pool": pool[i], "logits": logits[i]} if logits.shape[1] else {"pool": pool[i]}

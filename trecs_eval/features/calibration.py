"""A seeded random Inception that still produces informative features (no pretrained weights).

PyTorch's default init gives an Inception whose pool features barely depend on the input
(FID ~ 0 and IS ~ 1 for anything), which tests nothing. The calibrated init here:

1. He-normal (fan-in, ReLU gain) for every conv and linear weight, drawn from ``seed``;
2. BatchNorm running mean/var fitted on a few seeded synthetic batches (cumulative average in
   train mode), so every layer's activations have unit scale instead of vanishing/exploding;
3. the classifier rows made orthogonal to the mean pool feature (logits follow what differs
   between images, not the constant part) and scaled so the logits' across-image std per class
   is ``LOGIT_STD_TARGET``: IS then separates varied from uniform images.

The network is torch-fidelity's own ``FeatureExtractorInceptionV3`` class and the result is a
plain ``torch.save``\\d state dict, loaded through the same path as a user's weights file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from trecs_eval.atomic import atomic_write
from trecs_eval.features.identity import sha256_file

INCEPTION_LAYERS = ("2048", "logits_unbiased")
# Bump when the calibration changes: cached random weights are found by (seed, version), so an
# old file made by other code is never mistaken for the current one.
CALIBRATION_VERSION = 1
CALIBRATION_BATCHES = 2
CALIBRATION_BATCH_SIZE = 12
CALIBRATION_IMAGE_PX = 64  # the network resizes to 299 itself; small inputs keep this cheap
LOGIT_STD_TARGET = 3.0  # across-image std of each logit: softmax is peaked but not one-hot


class _InceptionSkeleton(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception built without any weights (an empty state dict is skipped)."""

    def load_state_dict(self, state_dict, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        if not state_dict:
            return None
        return super().load_state_dict(state_dict, *args, **kwargs)


def inception_skeleton() -> FeatureExtractorInceptionV3:
    """The Inception architecture with untouched PyTorch default parameters.

    torch-fidelity's constructor insists on ``torch.load(weights_only=False)`` of something: it
    gets the in-memory bytes of an empty dict made right here, never a file. Weights are loaded
    afterwards through :mod:`trecs_eval.features.weight_files` (``weights_only=True``).
    """
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    return _InceptionSkeleton("inception-v3-compat", list(INCEPTION_LAYERS),
                              feature_extractor_weights_path=empty)


def synthetic_images(rng: np.random.RandomState, n: int, px: int = CALIBRATION_IMAGE_PX
                     ) -> torch.Tensor:
    """``n`` varied uint8 images (N, 3, px, px): smooth colour fields, blocks and noise."""
    images = np.empty((n, px, px, 3), np.float64)
    for i in range(n):
        cells = rng.randint(2, 9)
        field = rng.rand(cells, cells, 3) * 255
        reps = -(-px // cells)
        img = np.kron(field, np.ones((reps, reps, 1)))[:px, :px]
        for _ in range(rng.randint(0, 4)):
            y0, x0 = rng.randint(0, px, size=2)
            img[y0:y0 + rng.randint(4, px // 2), x0:x0 + rng.randint(4, px // 2)] = rng.rand(3) * 255
        img += rng.randn(px, px, 3) * rng.uniform(0, 40)
        images[i] = img
    return torch.from_numpy(np.clip(images, 0, 255).astype(np.uint8)).permute(0, 3, 1, 2).contiguous()


def _he_init(model: nn.Module, generator: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            std = float(np.sqrt(2.0 / fan_in))
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.BatchNorm2d):
            module.weight.fill_(1.0)
            module.bias.zero_()


def _fit_batchnorm(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Running stats = average of batch stats over the calibration batches (momentum None)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for batch in batches:
        model(batch)
    model.eval()
    for norm in norms:
        norm.momentum = 0.1  # restore the default so the saved module is ordinary


def _calibrate_classifier(model: FeatureExtractorInceptionV3, batches: list[torch.Tensor]) -> None:
    pool = torch.cat([model(batch)[0] for batch in batches]).double()
    mean = pool.mean(dim=0)
    weight = model.fc.weight.double()
    weight = weight - torch.outer(weight @ mean, mean) / mean.dot(mean)  # rows orthogonal to mean
    logit_std = (pool @ weight.T).std(dim=0).mean()
    model.fc.weight.copy_((weight * (LOGIT_STD_TARGET / logit_std)).float())
    model.fc.bias.zero_()


def make_calibrated_inception_weights(path: str | os.PathLike[str], seed: int) -> str:
    """Write a calibrated random Inception state dict to ``path`` (atomically); return its sha256.

    Deterministic for a given seed, torch version and CPU; cost: about ``CALIBRATION_BATCHES
    * CALIBRATION_BATCH_SIZE * 2`` Inception forward passes at 299 px.
    """
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.RandomState(seed)
    model = inception_skeleton()
    batches = [synthetic_images(rng, CALIBRATION_BATCH_SIZE) for _ in range(CALIBRATION_BATCHES)]
    with torch.no_grad():
        _he_init(model, generator)
        _fit_batchnorm(model, batches)
        _calibrate_classifier(model, batches)
    target = Path(path)
    # Saved through a file object: torch.save names the zip archive after a *path* it is given,
    # so saving to the random temp name would make every file's sha256 different. Atomic: a
    # concurrent reader sees the old file or the whole new one.
    with atomic_write(target, "wb") as handle:
        torch.save(model.state_dict(), handle)
    return sha256_file(str(target))

"""DINOv2 weights: the official release, a user's file, or calibrated random weights; one loader.

Backbones (timm model definitions, ``timm.create_model(name, num_classes=0, img_size=224)``):
``vitl14`` = ``vit_large_patch14_dinov2.lvd142m`` (1024-d; the backbone that *defines*
FD-DINOv2, Stein et al. 2023), and the small members of the family for tests and demo-sized
configs: ``vitb14`` (768-d) and ``vits14`` (384-d). The backbone is part of the identity.

Sources, all ending as a file that :func:`load_dinov2` reads (``weights_only`` / safetensors,
never pickle):

* release (``weights=None`` or the release name, e.g. ``"vit_large_patch14_dinov2.lvd142m"``):
  ``model.safetensors`` of the Hugging Face repo ``timm/<release name>``, from the local Hugging
  Face cache or downloaded into it; offline (``TRECS_EVAL_OFFLINE=1`` or no DNS for
  huggingface.co) only the cache is read. Its sha256 is checked against the hub's own record
  (the cache stores an LFS file under its sha256) and recorded in the identity;
* a local file (``weights=PATH``): ``.safetensors``, or a torch state dict (``.pth``/``.pt``,
  loaded with ``weights_only=True``) in timm's layout or in Meta's original layout
  (``dinov2_vitl14_pretrain.pth``: ``mask_token``, 37x37 position grid), converted by timm's
  ``checkpoint_filter_fn``; its sha256 is recorded;
* ``uncalibrated=True``: :func:`make_calibrated_dinov2_weights` writes seeded random weights
  to a safetensors file in the user cache, then loaded as a file. Results are stamped
  UNCALIBRATED.

Position embeddings are trained on a 37x37 grid (518 px); at 224 px the grid is 16x16. They
are resampled as DINOv2's own ``interpolate_pos_encoding`` does (bicubic, ``scale_factor =
(16 + 0.1) / 37``, no antialias) — what dgm-eval's ``torch.hub`` model computes at run time —
not with timm's default (antialiased, exact size).

Calibration (why: timm's init has LayerScale gammas of 1e-5, so every block is nearly the
identity and the class token barely depends on the image: pairwise cosine 1.0000 on varied
inputs): seeded timm init, LayerScale gammas set to 1, then the final LayerNorm's affine
parameters set so that each output dimension has mean 0 and std 1 over seeded synthetic
images (:func:`trecs_eval.features.calibration.synthetic_images`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trecs_eval.atomic import atomic_write
from trecs_eval.errors import ConfigError, InputError, MissingWeightsError, UnknownNameError, suggest
from trecs_eval.features.cache import default_cache_dir
from trecs_eval.features.identity import sha256_file
from trecs_eval.features.weight_files import checked_cache_file, host_resolves, load_state_dict_file
from trecs_eval.features.weights import OFFLINE_ENV, ResolvedWeights

ARCHS = {
    "vitl14": "vit_large_patch14_dinov2.lvd142m",
    "vitb14": "vit_base_patch14_dinov2.lvd142m",
    "vits14": "vit_small_patch14_dinov2.lvd142m",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFINING_ARCH = "vitl14"  # FD-DINOv2 is defined on ViT-L/14 (dgm-eval's default)
INPUT_PX = 224
PATCH_PX = 14
POS_EMBED_OFFSET = 0.1  # DINOv2's interpolate_offset
RELEASE_FILENAME = "model.safetensors"
CALIBRATION_VERSION = 1  # bump when the calibration changes (cached files are found by version)
CALIBRATION_IMAGES = 12
FEATURE_STD_TARGET = 1.0
NO_WEIGHTS_HINT = ("pass --dinov2-weights PATH (a local .safetensors or .pth of the backbone), or "
                   "--uncalibrated-weights for seeded random weights (results stamped UNCALIBRATED)")


def check_arch(arch: str) -> str:
    """The timm release name of a backbone key; UnknownNameError with did-you-mean otherwise."""
    if arch not in ARCHS:
        raise UnknownNameError(f"unknown DINOv2 backbone {arch!r}{suggest(arch, list(ARCHS))}; "
                               f"available: {', '.join(ARCHS)}")
    return ARCHS[arch]


def create_backbone(arch: str) -> torch.nn.Module:
    """The timm architecture at 224 px, class-token output after the final norm, no weights."""
    import timm

    base = check_arch(arch).split(".")[0]
    return timm.create_model(base, pretrained=False, num_classes=0, img_size=INPUT_PX)


def resample_pos_embed_like_dinov2(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + M², D) -> (1, 1 + grid², D): bicubic, scale (grid + 0.1) / M, no antialias."""
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
    size = round(patch_pos.shape[1] ** 0.5)
    if size * size != patch_pos.shape[1]:
        raise ValueError(f"position embedding of {patch_pos.shape[1]} patches is not a square grid")
    if size == grid:
        return pos_embed
    dim = patch_pos.shape[-1]
    scale = (grid + POS_EMBED_OFFSET) / size
    patches = torch.nn.functional.interpolate(
        patch_pos.float().reshape(1, size, size, dim).permute(0, 3, 1, 2),
        scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if patches.shape[-2:] != (grid, grid):
        raise ValueError(f"resampled grid {tuple(patches.shape[-2:])} != ({grid}, {grid})")
    return torch.cat([cls_pos.float(), patches.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file or a ``weights_only`` torch file, unwrapped from common
    checkpoint wrappers (``model``, ``state_dict``, ``teacher``); never unpickles code."""
    state = load_state_dict_file(path, field="dinov2_weights", what="DINOv2 weights")
    for key in ("model", "state_dict", "teacher"):  # common wrappers of released checkpoints
        if isinstance(state.get(key), dict):
            state = state[key]
    return state


def load_dinov2(weights: ResolvedWeights, arch: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The backbone with the given weights file, in eval mode (one path for every source)."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    model = create_backbone(arch)
    state = read_state_dict(weights.path)
    try:
        if "pos_embed" in state:
            state["pos_embed"] = resample_pos_embed_like_dinov2(state["pos_embed"], INPUT_PX // PATCH_PX)
        model.load_state_dict(checkpoint_filter_fn(state, model), strict=True)
    except (RuntimeError, KeyError, ValueError) as err:
        raise InputError(f"not a DINOv2 {arch} state dict: {str(err)[:300]}", path=str(weights.path),
                         field="dinov2_weights") from err
    return model.eval().to(device)


def release_weights(arch: str, cache_dir: str | os.PathLike[str] | None = None) -> ResolvedWeights:
    """``model.safetensors`` of ``timm/<release>`` (cache first), sha256 checked against the hub's.

    ``cache_dir``: a Hugging Face hub cache other than the default (``HF_HUB_CACHE``).
    """
    from huggingface_hub import hf_hub_download

    repo = f"timm/{check_arch(arch)}"
    offline = os.environ.get(OFFLINE_ENV, "") not in ("", "0") or not host_resolves("huggingface.co")
    try:
        path = Path(hf_hub_download(repo, RELEASE_FILENAME, local_files_only=offline,
                                    cache_dir=None if cache_dir is None else str(cache_dir)))
    except Exception as err:  # hub errors have many types; all mean "no weights here"
        where = "the local Hugging Face cache (offline)" if offline else "the Hugging Face hub"
        raise MissingWeightsError(f"DINOv2 weights {repo}/{RELEASE_FILENAME} are not in {where} "
                                  f"({type(err).__name__})", hint=NO_WEIGHTS_HINT) from err
    return verified_hub_file(path)


def verified_hub_file(path: Path) -> ResolvedWeights:
    """A hub cache file whose sha256 equals the LFS sha256 the cache stores it under."""
    digest = sha256_file(str(path))
    expected = Path(os.path.realpath(path)).name  # blobs/<sha256> for LFS files
    if len(expected) == 64 and expected != digest:
        raise MissingWeightsError(f"{path} has sha256 {digest[:16]}..., the hub recorded "
                                  f"{expected[:16]}...; the download is corrupt: delete it to download again",
                                  hint=NO_WEIGHTS_HINT)
    if len(expected) != 64:
        raise MissingWeightsError(f"{path} is not an LFS file of the hub cache: its sha256 cannot be checked",
                                  hint=NO_WEIGHTS_HINT)
    return ResolvedWeights(path, digest, "release", uncalibrated=False)


def calibrated_weights_path(arch: str, seed: int) -> Path:
    """Where the calibrated random weights of ``arch`` and ``seed`` are cached."""
    name = f"dinov2-{arch}-calibrated-random-seed{seed}-v{CALIBRATION_VERSION}.safetensors"
    return default_cache_dir() / "weights" / name


def resolve_dinov2_weights(weights: str | os.PathLike[str] | None = None, arch: str = DEFINING_ARCH,
                           uncalibrated: bool = False, seed: int = 0) -> ResolvedWeights:
    """Pick the weights file (module doc); MissingWeightsError naming the flags when there is none."""
    check_arch(arch)
    if weights is not None and uncalibrated:
        raise ConfigError("give either --dinov2-weights or --uncalibrated-weights, not both")
    if uncalibrated:
        path = calibrated_weights_path(arch, seed)
        # (re)made unless its bytes match the sha256 recorded when it was made
        digest = checked_cache_file(path, lambda target: make_calibrated_dinov2_weights(target, arch, seed))
        return ResolvedWeights(path, digest, "calibrated-random", uncalibrated=True)
    if weights is None or str(weights) == ARCHS[arch]:
        return release_weights(arch)
    if str(weights) in ARCHS.values():
        raise ConfigError(f"release {weights!r} is not the weights of backbone {arch!r} ({ARCHS[arch]})")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InputError("weights file not found", path=str(path), field="dinov2_weights")
    return ResolvedWeights(path, sha256_file(str(path)), "file", uncalibrated=False)


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [0, 1] -> ImageNet-normalized (x - mean) / std (the extractor's and
    the calibration's one normalization)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def _calibration_batch(seed: int) -> torch.Tensor:
    from trecs_eval.features.calibration import synthetic_images

    images = synthetic_images(np.random.RandomState(seed), CALIBRATION_IMAGES, INPUT_PX)
    return normalize_batch(images.float() / 255.0)


def make_calibrated_dinov2_weights(path: str | os.PathLike[str], arch: str, seed: int) -> str:
    """Write calibrated random weights (module doc) as safetensors, atomically; return the sha256."""
    from safetensors.torch import save

    torch.manual_seed(seed)  # timm's init draws from the global generator
    model = create_backbone(arch).eval()
    with torch.no_grad():
        for block in model.blocks:
            for scale in (block.ls1, block.ls2):
                if hasattr(scale, "gamma"):
                    scale.gamma.fill_(1.0)
        model.norm.weight.fill_(1.0)
        model.norm.bias.zero_()
        out = model(_calibration_batch(seed)).double()
        std = out.std(dim=0).clamp_min(1e-12)
        model.norm.weight.copy_((FEATURE_STD_TARGET / std).float())
        model.norm.bias.copy_((-out.mean(dim=0) * FEATURE_STD_TARGET / std).float())
    target = Path(path)
    state: dict[str, Any] = {k: v.contiguous() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes a metadata dict in hash order, so several keys
    # made the bytes (and the sha256) differ between runs.
    label = f"calibrated-random {arch} seed {seed} v{CALIBRATION_VERSION}"
    blob = save(state, metadata={"trecs_eval": label})
    with atomic_write(target, "wb") as handle:  # a concurrent reader sees no half-written file
        handle.write(blob)
    return sha256_file(str(target))

"""Converters from the released generator checkpoints to the project's checkpoint formats.

* ``convert-spade``: NVlabs/SPADE ``latest_net_G.pth`` (COCO-Stuff: ``label_nc = 182`` +
  dontcare + instance edges = 184 input channels, ``norm_G = spectralspadesyncbatch3x3``,
  ``num_upsampling_layers = normal``, with or without ``--use_vae``) ->
  ``trecs-spade-v2`` (:mod:`reference_pipeline.synthesize.spade`).
* ``convert-ccfpse``: xh-liu/CC-FPSE's COCO generator (``netG = condconv``, ``--use_vae``,
  ``norm_G = spectralsync_batch``) -> ``trecs-ccfpse-v1`` (:mod:`reference_pipeline.synthesize.ccfpse`).

Both read the file with ``torch.load(weights_only=True)`` (a bare ``state_dict``; a ``module.``
prefix from DataParallel is removed) and fold spectral norm into plain weights the way
``torch.nn.utils.spectral_norm`` computes them at inference (no power iteration):
``W = W_orig / σ``, ``σ = uᵀ · mat(W_orig) · v`` with ``mat`` flattening all but the output dim.
Synchronized BatchNorm keeps its running statistics (it is a BatchNorm at inference). Anything
else (another dataset's channel count, another generator variant, a discriminator) is refused,
saying what was found.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reference_pipeline.synthesize import ccfpse, spade
from trecs_eval.errors import InputError

Tensors = dict[str, torch.Tensor]
KNOWN_CHANNELS = {184: "COCO-Stuff (182 + dontcare + edges)", 152: "ADE20K (150 + dontcare + edges)",
                  151: "ADE20K (150 + dontcare, no instances)", 36: "Cityscapes (35 + edges)"}
CCFPSE_UNUSED_NORMS = ("conv_0.norm_layer.", "norm_0.", "conv_2.norm_layer.")


def read_released(path: str | os.PathLike[str]) -> Tensors:
    """The checkpoint's state dict (``weights_only``), ``module.`` prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or unsafe pickle
        raise InputError(f"not a loadable weights-only torch checkpoint ({str(err)[:200]})",
                         str(path)) from err
    tensors = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    if not state or not tensors:
        raise InputError("expected a bare generator state_dict (parameter name -> tensor), as "
                         "latest_net_G.pth is", str(path))
    return {k.removeprefix("module."): v for k, v in state.items()}


def fold_spectral_norm(state: Tensors) -> Tensors:
    """``name.weight_orig/_u/_v`` -> ``name.weight = W_orig / (uᵀ mat(W_orig) v)`` (module doc)."""
    out = {k: v for k, v in state.items() if not k.endswith((".weight_orig", ".weight_u", ".weight_v"))}
    for key in state:
        if key.endswith(".weight_orig"):
            base = key.removesuffix("_orig")
            w, u, v = state[key], state[base + "_u"], state[base + "_v"]
            sigma = torch.dot(u, torch.mv(w.reshape(w.shape[0], -1), v))
            out[base] = w / sigma
    return out


def _load_strict(model: nn.Module, state: Tensors, what: str, path: str) -> None:
    """Load ``state`` exactly; BatchNorm ``num_batches_tracked`` (absent in old checkpoints) is filled."""
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = sorted(set(model.state_dict()) - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise InputError(f"not {what}: {len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} "
                         f"unexpected keys (e.g. {unexpected[:3]})", path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InputError(f"not {what}: {str(err)[:300]}", path) from err


def _check_channels(channels: int, path: str) -> None:
    if channels != spade.SEMANTIC_CHANNELS:
        known = KNOWN_CHANNELS.get(channels, "an unknown label set")
        raise InputError(f"the generator takes {channels} input channels ({known}); only the COCO-Stuff "
                         f"model ({spade.SEMANTIC_CHANNELS} = 182 labels + dontcare + instance edges) "
                         "matches TReCS canvases", path)


def _crop_size(side: int | None, crop_size: int | None, path: str) -> int:
    if side is not None and crop_size is not None and crop_size != side * 32:
        raise InputError(f"the checkpoint's latent grid is {side}×{side}, i.e. crop_size {side * 32}, "
                         f"not {crop_size}", path)
    size = crop_size or (side * 32 if side else 256)
    if size % 32:
        raise InputError(f"crop_size must be a multiple of 32, got {size}", path)
    return size


def spade_from_nvlabs(path: str | os.PathLike[str], crop_size: int | None = None) -> spade.SPADEGenerator:
    """NVlabs' SPADE COCO generator as a :class:`~reference_pipeline.synthesize.spade.SPADEGenerator`."""
    where = str(path)
    state = fold_spectral_norm(read_released(path))
    if "fc.weight" not in state or "head_0.norm_0.mlp_shared.0.weight" not in state:
        raise InputError("not an NVlabs SPADEGenerator state_dict (no fc / head_0.norm_0 weights)", where)
    if any(k.startswith("up_4.") for k in state):
        raise InputError("num_upsampling_layers='most' (up_4) is not supported; the COCO model uses "
                         "'normal'", where)
    fc = state["fc.weight"]
    use_vae = fc.ndim == 2
    ngf = state["head_0.conv_0.weight"].shape[0] // 16
    side = math.isqrt(fc.shape[0] // (16 * ngf)) if use_vae else None
    _check_channels(state["head_0.norm_0.mlp_shared.0.weight"].shape[1], where)
    config = spade.SpadeConfig(
        ngf=ngf, z_dim=fc.shape[1] if use_vae else spade.SpadeConfig.z_dim,
        nhidden=state["head_0.norm_0.mlp_shared.0.weight"].shape[0],
        crop_size=_crop_size(side, crop_size, where),
        norm="batch" if "head_0.norm_0.param_free_norm.running_mean" in state else "instance",
        use_vae=use_vae)
    model = spade.SPADEGenerator(config)
    _load_strict(model, state, f"an NVlabs SPADE generator of {config}", where)
    return model.eval()


def ccfpse_from_release(path: str | os.PathLike[str],
                        crop_size: int | None = None) -> ccfpse.CondConvGenerator:
    """CC-FPSE's released COCO generator as a :class:`~.ccfpse.CondConvGenerator`."""
    where = str(path)
    state = fold_spectral_norm(read_released(path))
    if "labelenc1.0.0.weight" not in state or "fc.weight" not in state:
        raise InputError("not a CC-FPSE CondConvGenerator state_dict (no labelenc1 / fc weights)", where)
    if any(k.startswith(("labelenc7.", "labellat6.")) for k in state):
        raise InputError("num_upsampling_layers='more' (the Cityscapes variant) is not supported; the "
                         "COCO model uses 'normal'", where)
    if state["fc.weight"].ndim != 2:
        raise InputError("a CC-FPSE generator trained without --use_vae (its fc is a convolution) is not "
                         "supported; the released COCO model uses --use_vae", where)
    _check_channels(state["labelenc1.0.0.weight"].shape[1], where)
    # BatchNorms CC-FPSE builds but never calls (see the ccfpse module doc): not part of the model
    state = {k: v for k, v in state.items() if not any(f".{unused}" in k for unused in CCFPSE_UNUSED_NORMS)}
    ngf = state["labelenc1.0.0.weight"].shape[0]
    side = math.isqrt(state["fc.weight"].shape[0] // (16 * ngf))
    config = ccfpse.CcfpseConfig(ngf=ngf, z_dim=state["fc.weight"].shape[1],
                                 crop_size=_crop_size(side, crop_size, where),
                                 nhidden=state["head_0.gen_weights1.0.weight"].shape[0])
    model = ccfpse.CondConvGenerator(config)
    _load_strict(model, state, f"a CC-FPSE COCO generator of {config}", where)
    return model.eval()


def write_converted(model: nn.Module, out: str | os.PathLike[str], save: Callable[[Any, Path], None]) -> Path:
    """``save(model, out)`` (the savers write atomically); an existing ``out`` is never overwritten."""
    out = Path(out)
    if out.exists():
        raise InputError("output exists; choose another --out (a user's file is never overwritten)", str(out))
    save(model, out)
    return out

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
from reference_pipeline.synthesize.checked import MAX_CROP_SIZE, build_checked, check_tensors, tensor
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


def fold_spectral_norm(state: Tensors, what: str = "a generator", where: str = "<checkpoint>") -> Tensors:
    """``name.weight_orig/_u/_v`` -> ``name.weight = W_orig / (uᵀ mat(W_orig) v)`` (module doc); an
    incomplete or degenerate triple is refused naming the tensor."""
    out = {k: v for k, v in state.items() if not k.endswith((".weight_orig", ".weight_u", ".weight_v"))}
    for key in state:
        if key.endswith(".weight_orig"):
            base = key.removesuffix("_orig")
            for part in ("_u", "_v"):
                if base + part not in state:
                    raise InputError(f"this is not {what}: missing {base + part} (spectral norm needs "
                                     "weight_orig, weight_u and weight_v)", where)
            w, u, v = state[key], state[base + "_u"], state[base + "_v"]
            if w.ndim < 2 or u.shape != (w.shape[0],) or v.shape != (w[0].numel(),):
                raise InputError(f"this is not {what}: {base}_orig/_u/_v have shapes {tuple(w.shape)}, "
                                 f"{tuple(u.shape)}, {tuple(v.shape)}, which do not fit together", where)
            sigma = torch.dot(u.float(), torch.mv(w.float().reshape(w.shape[0], -1), v.float()))
            if not bool(torch.isfinite(sigma)) or float(sigma) == 0.0:
                raise InputError(f"this is not {what}: the spectral norm of {base} is {float(sigma)}", where)
            out[base] = (w.float() / sigma).to(w.dtype)
    return out


def _check_channels(channels: int, path: str) -> None:
    if channels != spade.SEMANTIC_CHANNELS:
        known = KNOWN_CHANNELS.get(channels, "an unknown label set")
        raise InputError(f"the generator takes {channels} input channels ({known}); only the COCO-Stuff "
                         f"model ({spade.SEMANTIC_CHANNELS} = 182 labels + dontcare + instance edges) "
                         "matches TReCS canvases", path)


def _crop_size(side: int | None, crop_size: int | None, path: str) -> int:
    if crop_size is not None and not 32 <= crop_size <= MAX_CROP_SIZE:
        raise InputError(f"--crop-size must be a multiple of 32 in [32, {MAX_CROP_SIZE}], got {crop_size}",
                         path)
    if side is not None and crop_size is not None and crop_size != side * 32:
        raise InputError(f"the checkpoint's latent grid is {side}×{side}, i.e. crop_size {side * 32}, "
                         f"not {crop_size}", path)
    size = crop_size or (side * 32 if side else 256)
    if size % 32 or size > MAX_CROP_SIZE:
        raise InputError(f"crop_size must be a multiple of 32 in [32, {MAX_CROP_SIZE}], got {size}", path)
    return size


def _latent_side(fc_out: int, ngf: int, what: str, where: str) -> int:
    """The latent grid side ``s`` with ``fc_out = 16·ngf·s²`` (the VAE generators' fc)."""
    side = math.isqrt(fc_out // (16 * ngf))
    if side < 1 or 16 * ngf * side * side != fc_out:
        raise InputError(f"this is not {what}: fc.weight has {fc_out} outputs, not 16·ngf·s² for ngf = {ngf}",
                         where)
    return side


def _ngf(width: int, per: int, key: str, what: str, where: str) -> int:
    if width < per or width % per:
        raise InputError(f"this is not {what}: {key} has {width} output channels, not a positive multiple "
                         f"of {per}", where)
    return width // per


def _released(path: str | os.PathLike[str], what: str) -> Tensors:
    """The released state dict, its tensors checked, spectral norm folded."""
    state = read_released(path)
    check_tensors(state, what, str(path))
    return fold_spectral_norm(state, what, str(path))


def spade_from_nvlabs(path: str | os.PathLike[str], crop_size: int | None = None) -> spade.SPADEGenerator:
    """NVlabs' SPADE COCO generator as a :class:`~reference_pipeline.synthesize.spade.SPADEGenerator`."""
    where, what = str(path), "a SPADE COCO generator"
    state = _released(path, what)
    if "fc.weight" not in state or "head_0.norm_0.mlp_shared.0.weight" not in state:
        raise InputError("not an NVlabs SPADEGenerator state_dict (no fc / head_0.norm_0 weights)", where)
    if any(k.startswith("up_4.") for k in state):
        raise InputError("num_upsampling_layers='most' (up_4) is not supported; the COCO model uses "
                         "'normal'", where)
    fc = tensor(state, "fc.weight", (2, 4), what, where)
    mlp = tensor(state, "head_0.norm_0.mlp_shared.0.weight", (4,), what, where)
    use_vae = fc.ndim == 2
    ngf = _ngf(tensor(state, "head_0.conv_0.weight", (4,), what, where).shape[0], 16,
               "head_0.conv_0.weight", what, where)
    side = _latent_side(fc.shape[0], ngf, what, where) if use_vae else None
    _check_channels(mlp.shape[1], where)
    config = spade.SpadeConfig(
        ngf=ngf, z_dim=fc.shape[1] if use_vae else spade.SpadeConfig.z_dim, nhidden=mlp.shape[0],
        crop_size=_crop_size(side, crop_size, where),
        norm="batch" if "head_0.norm_0.param_free_norm.running_mean" in state else "instance",
        use_vae=use_vae)
    return build_checked(spade.SPADEGenerator, config, state, f"an NVlabs SPADE generator of {config}",
                         where).eval()


def ccfpse_from_release(path: str | os.PathLike[str],
                        crop_size: int | None = None) -> ccfpse.CondConvGenerator:
    """CC-FPSE's released COCO generator as a :class:`~.ccfpse.CondConvGenerator`."""
    where, what = str(path), "a CC-FPSE COCO generator"
    state = _released(path, what)
    if "labelenc1.0.0.weight" not in state or "fc.weight" not in state:
        raise InputError("not a CC-FPSE CondConvGenerator state_dict (no labelenc1 / fc weights)", where)
    if any(k.startswith(("labelenc7.", "labellat6.")) for k in state):
        raise InputError("num_upsampling_layers='more' (the Cityscapes variant) is not supported; the "
                         "COCO model uses 'normal'", where)
    if state["fc.weight"].ndim != 2:
        raise InputError("a CC-FPSE generator trained without --use_vae (its fc is a convolution) is not "
                         "supported; the released COCO model uses --use_vae", where)
    labelenc = tensor(state, "labelenc1.0.0.weight", (4,), what, where)
    _check_channels(labelenc.shape[1], where)
    # BatchNorms CC-FPSE builds but never calls (see the ccfpse module doc): not part of the model
    state = {k: v for k, v in state.items() if not any(f".{unused}" in k for unused in CCFPSE_UNUSED_NORMS)}
    ngf = _ngf(labelenc.shape[0], 1, "labelenc1.0.0.weight", what, where)
    side = _latent_side(state["fc.weight"].shape[0], ngf, what, where)
    nhidden = tensor(state, "head_0.gen_weights1.0.weight", (2, 4), what, where).shape[0]
    config = ccfpse.CcfpseConfig(ngf=ngf, z_dim=state["fc.weight"].shape[1],
                                 crop_size=_crop_size(side, crop_size, where), nhidden=nhidden)
    return build_checked(ccfpse.CondConvGenerator, config, state, f"a CC-FPSE COCO generator of {config}",
                         where).eval()


def write_converted(model: nn.Module, out: str | os.PathLike[str], save: Callable[[Any, Path], None]) -> Path:
    """``save(model, out)`` (the savers write atomically); an existing ``out`` is never overwritten."""
    out = Path(out)
    if out.exists():
        raise InputError("output exists; choose another --out (a user's file is never overwritten)", str(out))
    save(model, out)
    return out

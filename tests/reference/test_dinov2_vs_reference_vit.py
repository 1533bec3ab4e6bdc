"""Our DINOv2 extractor (timm model, position grid resampled at load time) against a forward pass
written here from DINOv2's own ViT (facebookresearch/dinov2 ``vision_transformer.py``, what
dgm-eval's ``torch.hub`` model runs): class token after the final LayerNorm, position embeddings
interpolated at run time from the 37 x 37 training grid (bicubic, offset 0.1, no antialias).

The weights are a checkpoint in Meta's original layout (``mask_token``, 37 x 37 grid) made from
seeded calibrated random ViT-S/14 weights, so the conversion path is the one a real
``dinov2_vits14_pretrain.pth`` takes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from tests.clip_support import write_test_images
from trecs_eval.features import dinov2_weights as dw
from trecs_eval.features.dinov2 import DinoV2Extractor, normalize_batch, preprocess_dgm_eval
from trecs_eval.features.images import decode_rgb

DINOV2_ABS_TOL_VS_REFERENCE_FORWARD = 1e-4  # float32; fused vs explicit attention kernels
EMBED, DEPTH, HEADS, PATCH, EPS = 384, 12, 6, 14, 1e-6  # ViT-S/14 as DINOv2 defines it


def _runtime_pos_embed(pos_embed: torch.Tensor, w0: int, h0: int) -> torch.Tensor:
    """DINOv2's interpolate_pos_encoding: scale_factor (w0 + 0.1) / M, bicubic, antialias False."""
    cls_pos, patch_pos = pos_embed[:, 0], pos_embed[:, 1:]
    m = int(math.sqrt(patch_pos.shape[1]))
    patch_pos = F.interpolate(patch_pos.float().reshape(1, m, m, EMBED).permute(0, 3, 1, 2),
                              scale_factor=((w0 + 0.1) / m, (h0 + 0.1) / m), mode="bicubic", antialias=False)
    assert patch_pos.shape[-2:] == (w0, h0)
    return torch.cat([cls_pos[:, None], patch_pos.permute(0, 2, 3, 1).reshape(1, -1, EMBED)], dim=1)


def _reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) normalized pixels -> (B, 384) x_norm_clstoken, DINOv2's block by block."""
    b, _, h, w = x.shape
    tokens = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=PATCH)
    x = torch.cat([sd["cls_token"].expand(b, -1, -1), tokens.flatten(2).transpose(1, 2)], dim=1)
    x = x + _runtime_pos_embed(sd["pos_embed"], w // PATCH, h // PATCH)
    n, head_dim = x.shape[1], EMBED // HEADS
    for i in range(DEPTH):
        p = f"blocks.{i}."
        y = F.layer_norm(x, (EMBED,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], EPS)
        qkv = F.linear(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(b, n, 3, HEADS, head_dim).permute(2, 0, 3, 1, 4)
        attn = ((q * head_dim**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        y = F.linear((attn @ v).transpose(1, 2).reshape(b, n, EMBED), sd[p + "attn.proj.weight"],
                     sd[p + "attn.proj.bias"])
        x = x + sd[p + "ls1.gamma"] * y
        y = F.layer_norm(x, (EMBED,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], EPS)
        y = F.linear(F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        x = x + sd[p + "ls2.gamma"] * y
    return F.layer_norm(x, (EMBED,), sd["norm.weight"], sd["norm.bias"], EPS)[:, 0]


def test_extractor_equals_dinov2_reference_forward(tmp_path) -> None:
    from safetensors.torch import load_file

    timm_file = tmp_path / "vits14.safetensors"
    dw.make_calibrated_dinov2_weights(timm_file, "vits14", seed=3)
    meta = dict(load_file(str(timm_file)))
    generator = torch.Generator().manual_seed(0)
    meta["pos_embed"] = torch.randn(1, 1 + 37 * 37, EMBED, generator=generator) * 0.5  # training grid
    meta["mask_token"] = torch.zeros(1, EMBED)
    meta_file = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(meta, meta_file)
    images = write_test_images(tmp_path / "imgs", 3, size=50, seed=9)
    ours = DinoV2Extractor(arch="vits14", weights=str(meta_file), device="cpu",
                           progress=False).extract(images)
    pixels = normalize_batch(torch.stack([preprocess_dgm_eval(decode_rgb(p)) for p in images]))
    with torch.no_grad():
        reference = _reference_forward(meta, pixels).numpy()
    assert np.abs(ours.features - reference).max() < DINOV2_ABS_TOL_VS_REFERENCE_FORWARD
    assert np.abs(reference).max() > 0.1  # not a trivially small output

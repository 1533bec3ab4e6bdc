"""``spade`` synthesizer: a SPADE generator (Park et al., CVPR 2019) from a user's checkpoint.

Architecture as NVlabs/SPADE's ``SPADEGenerator`` (``num_upsampling_layers=normal``): a latent
``z`` (N(0, 1), ``z_dim``) -> ``fc`` -> 16·ngf × 8 × 8, then SPADE residual blocks ``head_0``,
``G_middle_0``, ``G_middle_1``, ``up_0..up_3`` with five 2× nearest upsamplings to 256 × 256,
``conv_img`` and tanh. SPADE normalization: ``x̂ · (1 + γ(m)) + β(m)`` with ``x̂`` the
parameter-free instance-normalized activation and ``γ, β`` convolutions of the semantic map
``m`` (nearest-resized). ``m`` has ``LABEL_CHANNELS = 182`` one-hot channels (channel
``id - 1`` for COCO-Stuff id ``id``) plus one instance-edge channel (1 where a pixel's
4-neighbour belongs to another instance), as SPADE's COCO setting.

Checkpoint format (``torch.save`` of a dict, loaded with ``torch.load(weights_only=True)``):
``{"format": "trecs-spade-v1", "config": {ngf, z_dim, nhidden, crop_size}, "state_dict": {...}}``;
a bare state dict is read with the default config. :func:`save_checkpoint` writes the format.
The latent comes from ``torch.Generator().manual_seed(seed)``: same seed, same image.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trecs_eval.errors import InputError, MissingWeightsError

LABEL_CHANNELS = 182
SEMANTIC_CHANNELS = LABEL_CHANNELS + 1  # + instance edges
CHECKPOINT_FORMAT = "trecs-spade-v1"
N_UPSAMPLINGS = 5


@dataclass(frozen=True)
class SpadeConfig:
    """Generator widths; NVlabs defaults are ngf=64, z_dim=256, nhidden=128, crop_size=256."""

    ngf: int = 64
    z_dim: int = 256
    nhidden: int = 128
    crop_size: int = 256


class SPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int, nhidden: int) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        if segmap.shape[2:] != x.shape[2:]:
            segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int, nhidden: int) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = nn.Conv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, SEMANTIC_CHANNELS, nhidden)
        self.norm_1 = SPADE(fmiddle, SEMANTIC_CHANNELS, nhidden)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, SEMANTIC_CHANNELS, nhidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class SPADEGenerator(nn.Module):
    """NVlabs-style SPADE generator at ``crop_size`` (a multiple of 32)."""

    def __init__(self, config: SpadeConfig = SpadeConfig()) -> None:
        super().__init__()
        self.config = config
        nf, nh = config.ngf, config.nhidden
        self.side = config.crop_size // 2**N_UPSAMPLINGS
        self.fc = nn.Linear(config.z_dim, 16 * nf * self.side * self.side)
        self.head_0 = SPADEResnetBlock(16 * nf, 16 * nf, nh)
        self.G_middle_0 = SPADEResnetBlock(16 * nf, 16 * nf, nh)
        self.G_middle_1 = SPADEResnetBlock(16 * nf, 16 * nf, nh)
        self.up_0 = SPADEResnetBlock(16 * nf, 8 * nf, nh)
        self.up_1 = SPADEResnetBlock(8 * nf, 4 * nf, nh)
        self.up_2 = SPADEResnetBlock(4 * nf, 2 * nf, nh)
        self.up_3 = SPADEResnetBlock(2 * nf, nf, nh)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, seg: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``seg`` (N, 183, S, S) float, ``z`` (N, z_dim) -> (N, 3, S, S) in [-1, 1]."""
        x = self.fc(z).view(-1, 16 * self.config.ngf, self.side, self.side)
        # The semantic map resized once per resolution (each block's SPADE layers share it).
        segs: dict[int, torch.Tensor] = {}

        def at(t: torch.Tensor) -> torch.Tensor:
            if t.shape[-1] not in segs:
                segs[t.shape[-1]] = F.interpolate(seg, size=t.shape[2:], mode="nearest")
            return segs[t.shape[-1]]

        up = nn.Upsample(scale_factor=2)
        x = up(self.head_0(x, at(x)))
        x = self.G_middle_0(x, at(x))
        x = up(self.G_middle_1(x, at(x)))
        for block in (self.up_0, self.up_1, self.up_2):
            x = up(block(x, at(x)))
        x = self.up_3(x, at(x))
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def semantic_input(labels: np.ndarray, instances: np.ndarray) -> torch.Tensor:
    """(1, 183, H, W) float: one-hot of ids 1..182 (channel id-1; unlabeled pixels all-zero) + edges."""
    lab = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    onehot = torch.zeros((LABEL_CHANNELS + 1, *lab.shape), dtype=torch.float32)
    onehot.scatter_(0, lab.clamp(0, LABEL_CHANNELS).unsqueeze(0), 1.0)
    inst = np.asarray(instances)
    edge = np.zeros(inst.shape, dtype=bool)
    diff_v, diff_h = inst[1:, :] != inst[:-1, :], inst[:, 1:] != inst[:, :-1]
    edge[1:, :] |= diff_v
    edge[:-1, :] |= diff_v
    edge[:, 1:] |= diff_h
    edge[:, :-1] |= diff_h
    seg = torch.cat([onehot[1:], torch.from_numpy(edge).float().unsqueeze(0)])
    return seg.unsqueeze(0)


def save_checkpoint(model: SPADEGenerator, path: str | os.PathLike[str]) -> None:
    """Writes the checkpoint format of the module doc."""
    checkpoint = {"format": CHECKPOINT_FORMAT, "config": asdict(model.config),
                  "state_dict": model.state_dict()}
    torch.save(checkpoint, path)


def load_generator(path: str | os.PathLike[str]) -> SPADEGenerator:
    """Loads a checkpoint with ``torch.load(weights_only=True)``; clear errors for missing/unfit files."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"SPADE checkpoint not found: {path}",
                                  hint="pass spade_checkpoint=PATH, a checkpoint for 182 labels + edges")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or unsafe pickle
        raise InputError(f"not a loadable weights-only torch checkpoint ({err})", str(path)) from err
    if isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT:
        config, state = SpadeConfig(**ckpt["config"]), ckpt["state_dict"]
    else:
        config, state = SpadeConfig(), ckpt
    model = SPADEGenerator(config)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise InputError(f"checkpoint does not fit the SPADE generator {config} ({str(err)[:300]})",
                         str(path), field="state_dict") from err
    return model.eval()


class SpadeSynthesizer:
    """Label canvas + instances -> image with a loaded SPADE generator."""

    def __init__(self, checkpoint: str | os.PathLike[str], device: str = "cpu") -> None:
        self.device = device
        self.model = load_generator(checkpoint).to(device)

    @torch.inference_mode()
    def __call__(self, labels: np.ndarray, instances: np.ndarray, seed: int) -> np.ndarray:
        """H×W×3 uint8 at the canvas size (generated at ``crop_size``, resized bilinearly if needed)."""
        size = self.model.config.crop_size
        seg = semantic_input(labels, instances)
        if seg.shape[2:] != (size, size):
            seg = F.interpolate(seg, size=(size, size), mode="nearest")
        z = torch.randn((1, self.model.config.z_dim), generator=torch.Generator().manual_seed(seed))
        out = self.model(seg.to(self.device), z.to(self.device))
        if out.shape[2:] != labels.shape:
            out = F.interpolate(out, size=labels.shape, mode="bilinear", align_corners=False)
        rgb = ((out[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return rgb.permute(1, 2, 0).cpu().numpy()

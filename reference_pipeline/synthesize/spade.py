"""``spade`` synthesizer: a SPADE generator (Park et al., CVPR 2019) from a user's checkpoint.

Architecture and parameter names as NVlabs/SPADE's ``SPADEGenerator``
(``num_upsampling_layers=normal``): ``fc`` -> 16·ngf × 8 × 8, then SPADE residual blocks ``head_0``,
``G_middle_0``, ``G_middle_1``, ``up_0..up_3`` with five 2× nearest upsamplings to 256 × 256,
``conv_img`` and tanh. ``fc`` is a linear map of a latent ``z`` ~ N(0, 1) (``use_vae``) or, as in
NVlabs' released COCO model, a 3×3 convolution of the semantic map nearest-resized to 8 × 8 (no
randomness). SPADE normalization: ``x̂ · (1 + γ(m)) + β(m)`` with ``x̂`` the parameter-free
normalized activation (``norm = "batch"``: running statistics, NVlabs' synchronized BatchNorm at
inference; ``"instance"``: per-image) and ``γ, β`` convolutions of the semantic map ``m``.

``m`` (:func:`semantic_input`) is NVlabs' COCO encoding, ``SEMANTIC_CHANNELS = 184``: a one-hot
of 182 labels + "dontcare" (channel ``id - 1`` for COCO-Stuff id ``id``; unlabeled pixels, id 0,
in channel 182, as NVlabs maps 255 to ``label_nc``), then the instance-edge channel (1 where a
pixel's 4-neighbour belongs to another instance, NVlabs' ``get_edges``).

Checkpoint format (``torch.save`` of a dict, loaded with ``torch.load(weights_only=True)``):
``{"format": "trecs-spade-v2", "config": {...SpadeConfig}, "state_dict": {...}}``.
:func:`save_checkpoint` writes it; ``trecs-eval pipeline convert-spade`` makes it from NVlabs'
``latest_net_G.pth`` (:mod:`reference_pipeline.synthesize.convert`). The latent (``use_vae``)
comes from ``torch.Generator().manual_seed(seed)``: same seed, same image.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trecs_eval.atomic import atomic_write
from trecs_eval.errors import InputError, MissingWeightsError

LABEL_CHANNELS = 182
SEMANTIC_CHANNELS = LABEL_CHANNELS + 2  # + dontcare + instance edges (NVlabs' COCO setting)
CHECKPOINT_FORMAT = "trecs-spade-v2"
N_UPSAMPLINGS = 5
NORMS = ("batch", "instance")


@dataclass(frozen=True)
class SpadeConfig:
    """Generator widths; NVlabs' COCO model: ngf=64, nhidden=128, crop_size=256, batch norm, no VAE."""

    ngf: int = 64
    z_dim: int = 256
    nhidden: int = 128
    crop_size: int = 256
    norm: str = "batch"
    use_vae: bool = False


def param_free_norm(channels: int, norm: str) -> nn.Module:
    """NVlabs' ``param_free_norm``: BatchNorm2d (running statistics in eval mode) or InstanceNorm2d."""
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    return nn.InstanceNorm2d(channels, affine=False)


class SPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int, nhidden: int, norm: str = "batch") -> None:
        super().__init__()
        self.param_free_norm = param_free_norm(norm_nc, norm)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        if segmap.shape[2:] != x.shape[2:]:
            segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int, nhidden: int, norm: str = "batch") -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = nn.Conv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, SEMANTIC_CHANNELS, nhidden, norm)
        self.norm_1 = SPADE(fmiddle, SEMANTIC_CHANNELS, nhidden, norm)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, SEMANTIC_CHANNELS, nhidden, norm)

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
        nf, nh, norm = config.ngf, config.nhidden, config.norm
        self.side = config.crop_size // 2**N_UPSAMPLINGS
        self.fc = (nn.Linear(config.z_dim, 16 * nf * self.side * self.side) if config.use_vae
                   else nn.Conv2d(SEMANTIC_CHANNELS, 16 * nf, 3, padding=1))
        self.head_0 = SPADEResnetBlock(16 * nf, 16 * nf, nh, norm)
        self.G_middle_0 = SPADEResnetBlock(16 * nf, 16 * nf, nh, norm)
        self.G_middle_1 = SPADEResnetBlock(16 * nf, 16 * nf, nh, norm)
        self.up_0 = SPADEResnetBlock(16 * nf, 8 * nf, nh, norm)
        self.up_1 = SPADEResnetBlock(8 * nf, 4 * nf, nh, norm)
        self.up_2 = SPADEResnetBlock(4 * nf, 2 * nf, nh, norm)
        self.up_3 = SPADEResnetBlock(2 * nf, nf, nh, norm)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``seg`` (N, 184, S, S) float, ``z`` (N, z_dim) when ``use_vae`` -> (N, 3, S, S) in [-1, 1]."""
        if self.config.use_vae:
            assert z is not None
            x = self.fc(z).view(-1, 16 * self.config.ngf, self.side, self.side)
        else:
            x = self.fc(F.interpolate(seg, size=(self.side, self.side), mode="nearest"))
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
    """(1, 184, H, W) float: one-hot of ids 1..182 in channel id-1, unlabeled (0 or >182) in channel
    182 (NVlabs' dontcare), then the instance-edge map."""
    lab = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    lab = torch.where((lab >= 1) & (lab <= LABEL_CHANNELS), lab - 1, torch.full_like(lab, LABEL_CHANNELS))
    onehot = torch.zeros((LABEL_CHANNELS + 1, *lab.shape), dtype=torch.float32)
    onehot.scatter_(0, lab.unsqueeze(0), 1.0)
    inst = np.asarray(instances)
    edge = np.zeros(inst.shape, dtype=bool)
    diff_v, diff_h = inst[1:, :] != inst[:-1, :], inst[:, 1:] != inst[:, :-1]
    edge[1:, :] |= diff_v
    edge[:-1, :] |= diff_v
    edge[:, 1:] |= diff_h
    edge[:, :-1] |= diff_h
    seg = torch.cat([onehot, torch.from_numpy(edge).float().unsqueeze(0)])
    return seg.unsqueeze(0)


def save_checkpoint(model: SPADEGenerator, path: str | os.PathLike[str]) -> None:
    """Writes the checkpoint format of the module doc."""
    checkpoint = {"format": CHECKPOINT_FORMAT, "config": asdict(model.config),
                  "state_dict": model.state_dict()}
    with atomic_write(path) as handle:  # a file object: the bytes do not depend on the file's name
        torch.save(checkpoint, handle)


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
    if not (isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT):
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(f"not a {CHECKPOINT_FORMAT} checkpoint (format: {found!r})", str(path),
                         hint="convert NVlabs' latest_net_G.pth with `trecs-eval pipeline convert-spade`")
    from reference_pipeline.synthesize.checked import from_project_checkpoint

    return from_project_checkpoint(ckpt, SpadeConfig, SPADEGenerator, "a SPADE generator", str(path)).eval()


def network_input(labels: np.ndarray, instances: np.ndarray, size: int) -> torch.Tensor:
    """:func:`semantic_input` at the network's ``size``: the label and instance maps are resized
    (nearest) first and the edges found at that size, as NVlabs' data loader does."""
    if labels.shape != (size, size):
        maps = torch.from_numpy(np.stack([labels.astype(np.float64), instances.astype(np.float64)]))
        maps = F.interpolate(maps[None], size=(size, size), mode="nearest")[0].numpy()
        labels, instances = maps[0].astype(np.int64), maps[1].astype(np.int64)
    return semantic_input(labels, instances)


@torch.inference_mode()
def run_generator(model: nn.Module, labels: np.ndarray, instances: np.ndarray, seed: int,
                  device: str) -> np.ndarray:
    """H×W×3 uint8 at the canvas size from a generator with ``config.crop_size``, ``z_dim`` and
    ``use_vae`` (the image is resized bilinearly to the canvas when the sizes differ)."""
    config = model.config  # type: ignore[attr-defined]
    seg = network_input(labels, instances, config.crop_size)
    z = None
    if config.use_vae:
        z = torch.randn((1, config.z_dim), generator=torch.Generator().manual_seed(seed)).to(device)
    out = model(seg.to(device), z)
    if out.shape[2:] != labels.shape:
        out = F.interpolate(out, size=labels.shape, mode="bilinear", align_corners=False)
    rgb = ((out[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rgb.permute(1, 2, 0).cpu().numpy()


class SpadeSynthesizer:
    """Label canvas + instances -> image with a loaded SPADE generator."""

    def __init__(self, checkpoint: str | os.PathLike[str], device: str = "cpu") -> None:
        self.device = device
        self.model = load_generator(checkpoint).to(device)

    def __call__(self, labels: np.ndarray, instances: np.ndarray, seed: int) -> np.ndarray:
        """H×W×3 uint8 at the canvas size (generated at ``crop_size``)."""
        return run_generator(self.model, labels, instances, seed, self.device)

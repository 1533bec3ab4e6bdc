"""``ccfpse`` synthesizer: the CC-FPSE generator (Liu et al., NeurIPS 2019, "Learning to Predict
Layout-to-image Conditional Convolutions for Semantic Image Synthesis"), the segmentation-to-image
model of the TReCS paper.

Architecture and parameter names as xh-liu/CC-FPSE's ``CondConvGenerator`` in its COCO setting
(``num_upsampling_layers = normal``, ``--use_vae``):

* **Feature pyramid semantics embedding.** ``labelenc1..6`` (3×3 convs, stride 1 then 2: 256 ->
  8 px, each conv + BatchNorm + LeakyReLU(0.2)) encode the semantic map ``m``; a top-down path
  ``segout_{k+1} = labeldec_k(up(segout_k) + labellat_k(enc_{6-k}))`` (1×1 laterals, 3×3 decoders)
  gives a semantic embedding per resolution, 8 -> 256 px.
* **Image path.** ``fc(z)`` -> 16·ngf × 8 × 8 with ``z`` ~ N(0, 1), then conditional-convolution
  blocks ``head_0`` (8), ``G_middle_0``/``G_middle_1`` (16), ``up_0..up_3`` (32 -> 256), ``conv_img``
  and tanh. Each block sees ``s = [m resized (nearest); segout at its size]``.
* **Conditional convolution block** (``DepthsepCCBlock``): from ``s``, small conv nets predict
  per-pixel 3×3 depthwise kernels (``gen_weights1/2``) and sigmoid channel gates
  (``gen_se_weights1/2``); ``dx = lrelu(gate1 · conv_1(dwconv(BN_1(x), W1)))``,
  ``dx = lrelu(gate2 · conv_3(dwconv(BN_2(dx), W2)))``, ``out = shortcut(x) + dx``, where
  ``dwconv(x, W)[c, p] = Σ_k W[c, k, p] · x[c, p + o_k]`` over the 9 offsets of a 3×3 window
  (zero padding) and the shortcut is a SPADE-normalized 1×1 conv when widths change.

The released checkpoint's unused BatchNorms (``conv_0.norm_layer``, ``norm_0``,
``conv_2.norm_layer``: built but never called in CC-FPSE's forward) are dropped by the converter.
The input encoding is SPADE's (:func:`reference_pipeline.synthesize.spade.semantic_input`: 182
labels + dontcare + instance edges = 184 channels). CC-FPSE's test script encodes ``z`` from the
real image; TReCS has none, so ``z`` is drawn from ``torch.Generator().manual_seed(seed)``.

Checkpoint format: ``{"format": "trecs-ccfpse-v1", "config": {...CcfpseConfig}, "state_dict": ...}``,
written by :func:`save_checkpoint` or ``trecs-eval pipeline convert-ccfpse``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reference_pipeline.synthesize.spade import SEMANTIC_CHANNELS, SPADE, run_generator
from trecs_eval.atomic import atomic_write
from trecs_eval.errors import InputError, MissingWeightsError

CHECKPOINT_FORMAT = "trecs-ccfpse-v1"
N_UPSAMPLINGS = 5
N_ENCODER_LEVELS = 6  # labelenc1..6: 256 -> 8 px at crop_size 256
NHIDDEN = 128  # hard-coded in CC-FPSE's weight-prediction nets and SPADE


@dataclass(frozen=True)
class CcfpseConfig:
    """Generator widths; the released COCO model: ngf=64, z_dim=256, crop_size=256."""

    ngf: int = 64
    z_dim: int = 256
    crop_size: int = 256
    nhidden: int = NHIDDEN
    use_vae: bool = True  # CC-FPSE's non-VAE path is unusable (its fc has 16·ngf·8·8 outputs)


def depthwise_conditional_conv(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``out[n, c, p] = Σ_k weights[n, 9c + k, p] · x[n, c, p + o_k]`` (3×3 window, zero padding)."""
    n, c, h, w = x.shape
    patches = F.unfold(x, kernel_size=3, padding=1).view(n * c, 9, h, w)
    return (weights.view(n * c, 9, h, w) * patches).sum(dim=1).view(n, c, h, w)


def _predictor(semantic_nc: int, nhidden: int, out: int, gate: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(semantic_nc, nhidden, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(nhidden, out, 3, padding=1)]
    return nn.Sequential(*layers, nn.Sigmoid()) if gate else nn.Sequential(*layers)


class DepthsepCCBlock(nn.Module):
    """CC-FPSE's conditional-convolution residual block (see the module doc)."""

    def __init__(self, fin: int, fout: int, semantic_nc: int, nhidden: int) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.gen_weights1 = _predictor(semantic_nc, nhidden, fin * 9, gate=False)
        self.gen_weights2 = _predictor(semantic_nc, nhidden, fout * 9, gate=False)
        self.gen_se_weights1 = _predictor(semantic_nc, nhidden, fmiddle, gate=True)
        self.gen_se_weights2 = _predictor(semantic_nc, nhidden, fout, gate=True)
        self.conv_1 = nn.Conv2d(fin, fmiddle, 1)
        self.norm_1 = nn.BatchNorm2d(fin, affine=True)
        self.norm_2 = nn.BatchNorm2d(fmiddle, affine=True)
        self.conv_3 = nn.Conv2d(fmiddle, fout, 1)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, semantic_nc, nhidden, "batch")

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        segmap = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        x_s = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        dx = depthwise_conditional_conv(self.norm_1(x), self.gen_weights1(segmap))
        dx = F.leaky_relu(self.conv_1(dx) * self.gen_se_weights1(segmap), 0.2)
        dx = depthwise_conditional_conv(self.norm_2(dx), self.gen_weights2(segmap))
        dx = F.leaky_relu(self.conv_3(dx) * self.gen_se_weights2(segmap), 0.2)
        return x_s + dx


def _conv_bn(fin: int, fout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """CC-FPSE's ``norm_layer(conv)`` (spectral norm folded, bias removed) + LeakyReLU(0.2)."""
    conv = nn.Conv2d(fin, fout, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(nn.Sequential(conv, nn.BatchNorm2d(fout, affine=True)), nn.LeakyReLU(0.2))


class CondConvGenerator(nn.Module):
    """CC-FPSE generator at ``crop_size`` (a multiple of 32)."""

    def __init__(self, config: CcfpseConfig = CcfpseConfig()) -> None:
        super().__init__()
        self.config = config
        nf, nh, snc = config.ngf, config.nhidden, SEMANTIC_CHANNELS
        self.side = config.crop_size // 2**N_UPSAMPLINGS
        self.fc = nn.Linear(config.z_dim, 16 * nf * self.side * self.side)
        self.labelenc1 = _conv_bn(snc, nf, 3)
        for k in range(2, N_ENCODER_LEVELS + 1):
            setattr(self, f"labelenc{k}", _conv_bn(nf, nf, 3, stride=2))
        for k in range(1, N_ENCODER_LEVELS):
            setattr(self, f"labellat{k}", _conv_bn(nf, nf, 1))
            setattr(self, f"labeldec{k}", _conv_bn(nf, nf, 3))
        widths = [(16, 16), (16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1)]
        names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
        for name, (fin, fout) in zip(names, widths, strict=True):
            setattr(self, name, DepthsepCCBlock(fin * nf, fout * nf, snc + nf, nh))
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def pyramid(self, seg: torch.Tensor) -> list[torch.Tensor]:
        """Semantic embeddings ``segout1..6`` at 8, 16, ..., 256 px (crop_size 256)."""
        enc = [seg]
        for k in range(1, N_ENCODER_LEVELS + 1):
            enc.append(getattr(self, f"labelenc{k}")(enc[-1]))
        outs = [enc[N_ENCODER_LEVELS]]
        for k in range(1, N_ENCODER_LEVELS):
            lateral = getattr(self, f"labellat{k}")(enc[N_ENCODER_LEVELS - k])
            outs.append(getattr(self, f"labeldec{k}")(F.interpolate(outs[-1], scale_factor=2) + lateral))
        return outs

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``seg`` (N, 184, S, S), ``z`` (N, z_dim) -> (N, 3, S, S) in [-1, 1]."""
        assert z is not None
        segout = self.pyramid(seg)
        x = self.fc(z).view(-1, 16 * self.config.ngf, self.side, self.side)

        def cond(t: torch.Tensor, level: int) -> torch.Tensor:
            return torch.cat((F.interpolate(seg, size=t.shape[2:], mode="nearest"), segout[level]), dim=1)

        up = nn.Upsample(scale_factor=2)
        x = up(self.head_0(x, cond(x, 0)))
        x = self.G_middle_0(x, cond(x, 1))
        x = up(self.G_middle_1(x, cond(x, 1)))
        for level, block in enumerate((self.up_0, self.up_1, self.up_2), start=2):
            x = up(block(x, cond(x, level)))
        x = self.up_3(x, cond(x, 5))
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def save_checkpoint(model: CondConvGenerator, path: str | os.PathLike[str]) -> None:
    """Writes the checkpoint format of the module doc."""
    checkpoint = {"format": CHECKPOINT_FORMAT, "config": asdict(model.config),
                  "state_dict": model.state_dict()}
    with atomic_write(path) as handle:  # a file object: the bytes do not depend on the file's name
        torch.save(checkpoint, handle)


def load_generator(path: str | os.PathLike[str]) -> CondConvGenerator:
    """Loads a ``trecs-ccfpse-v1`` checkpoint with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"CC-FPSE checkpoint not found: {path}",
                                  hint="convert the released COCO generator with `trecs-eval pipeline "
                                       "convert-ccfpse NET_G.pth --out PATH`; pass ccfpse_checkpoint=PATH")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or unsafe pickle
        raise InputError(f"not a loadable weights-only torch checkpoint ({err})", str(path)) from err
    if not (isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT):
        raise InputError(f"not a {CHECKPOINT_FORMAT} checkpoint", str(path),
                         hint="convert the released generator with `trecs-eval pipeline convert-ccfpse`")
    from reference_pipeline.synthesize.checked import from_project_checkpoint

    return from_project_checkpoint(ckpt, CcfpseConfig, CondConvGenerator, "a CC-FPSE generator",
                                   str(path)).eval()


class CcfpseSynthesizer:
    """Label canvas + instances -> image with a loaded CC-FPSE generator (latent from the seed)."""

    def __init__(self, checkpoint: str | os.PathLike[str], device: str = "cpu") -> None:
        self.device = device
        self.model = load_generator(checkpoint).to(device)

    def __call__(self, labels: np.ndarray, instances: np.ndarray, seed: int) -> np.ndarray:
        """H×W×3 uint8 at the canvas size (generated at ``crop_size``)."""
        return run_generator(self.model, labels, instances, seed, self.device)

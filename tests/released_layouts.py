"""Stand-ins for the released generators, written for the converter tests from the published
architectures (NVlabs/SPADE ``models/networks/{generator,architecture,normalization}.py`` and
xh-liu/CC-FPSE ``models/networks/{generator,architecture,condconv}.py``): the same module tree,
hence exactly their ``state_dict`` keys and shapes, built with the real
``torch.nn.utils.spectral_norm`` (``weight_orig``/``weight_u``/``weight_v``) and BatchNorm in place
of synchronized BatchNorm (same keys), at a tiny ``ngf``. Their forward passes restate the
released ones with torch's own spectral-norm hook doing the normalization, so a converted model
can be checked against them. Only ``num_upsampling_layers = normal``, COCO's 184 channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

SEMANTIC_NC = 184
NHIDDEN = 128  # hard-coded in both releases
BLOCKS = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")


def _settle(module: nn.Module) -> None:
    """A few power iterations for every spectral-normed conv (as training would leave u, v),
    random BatchNorm statistics, then eval mode."""
    gen = torch.Generator().manual_seed(7)
    for m in module.modules():
        if hasattr(m, "weight_orig"):
            m.train()
            with torch.no_grad():
                for _ in range(3):
                    m(torch.zeros(1, m.in_channels, 3, 3))
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            if m.affine:
                with torch.no_grad():
                    m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=gen))
                    m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
    module.eval()


class NvSPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int) -> None:
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)  # SynchronizedBatchNorm2d's keys
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, NHIDDEN, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(NHIDDEN, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(NHIDDEN, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class NvSPADEResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int, label_nc: int = SEMANTIC_NC) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = spectral_norm(nn.Conv2d(fin, fmid, 3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(fmid, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = NvSPADE(fin, label_nc)
        self.norm_1 = NvSPADE(fmid, label_nc)
        if self.learned_shortcut:
            self.norm_s = NvSPADE(fin, label_nc)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        return x_s + self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))


class NvSPADEGenerator(nn.Module):
    """NVlabs' SPADEGenerator (COCO, no VAE: ``fc`` convolves the 8×8-resized map)."""

    def __init__(self, ngf: int, crop_size: int, label_nc: int = SEMANTIC_NC) -> None:
        super().__init__()
        self.sw = crop_size // 32
        self.fc = nn.Conv2d(label_nc, 16 * ngf, 3, padding=1)
        widths = [(16, 16), (16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1)]
        for name, (a, b) in zip(BLOCKS, widths, strict=True):
            setattr(self, name, NvSPADEResnetBlock(a * ngf, b * ngf, label_nc))
        self.conv_img = nn.Conv2d(ngf, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        _settle(self)

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        x = self.fc(F.interpolate(seg, size=(self.sw, self.sw)))
        x = self.G_middle_0(self.up(self.head_0(x, seg)), seg)
        x = self.up(self.G_middle_1(x, seg))
        x = self.up(self.up_0(x, seg))
        x = self.up(self.up_1(x, seg))
        x = self.up_3(self.up(self.up_2(x, seg)), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class CcDepthConv(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.unfold = nn.Unfold(kernel_size=(3, 3), dilation=1, padding=1, stride=1)
        self.norm_layer = nn.BatchNorm2d(channels, affine=True)  # built, never called (as released)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        patches = self.unfold(x).view(n * c, 9, h, wd)
        return (w.view(n * c, 9, h, wd) * patches).sum(dim=1).view(n, c, h, wd)


def _cc_net(snc: int, out: int, gate: bool) -> nn.Sequential:
    layers = [nn.Conv2d(snc, NHIDDEN, 3, padding=1), nn.ReLU(), nn.Conv2d(NHIDDEN, out, 3, padding=1)]
    return nn.Sequential(*layers, *([nn.Sigmoid()] if gate else []))


class CcBlock(nn.Module):
    """CC-FPSE's DepthsepCCBlock."""

    def __init__(self, fin: int, fout: int, snc: int) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.gen_weights1 = _cc_net(snc, fin * 9, False)
        self.gen_weights2 = _cc_net(snc, fout * 9, False)
        self.gen_se_weights1 = _cc_net(snc, fmid, True)
        self.gen_se_weights2 = _cc_net(snc, fout, True)
        self.conv_0 = CcDepthConv(fin)
        self.norm_0 = nn.BatchNorm2d(fmid, affine=True)  # built, never called (as released)
        self.conv_1 = nn.Conv2d(fin, fmid, 1)
        self.norm_1 = nn.BatchNorm2d(fin, affine=True)
        self.conv_2 = CcDepthConv(fmid)
        self.norm_2 = nn.BatchNorm2d(fmid, affine=True)
        self.conv_3 = nn.Conv2d(fmid, fout, 1)
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = NvSPADE(fin, snc)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        segmap = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        x_s = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        dx = self.conv_1(self.conv_0(self.norm_1(x), self.gen_weights1(segmap)))
        dx = F.leaky_relu(dx * self.gen_se_weights1(segmap), 0.2)
        dx = self.conv_3(self.conv_2(self.norm_2(dx), self.gen_weights2(segmap)))
        return x_s + F.leaky_relu(dx * self.gen_se_weights2(segmap), 0.2)


def _cc_norm_conv(fin: int, fout: int, k: int, stride: int = 1) -> nn.Sequential:
    """``get_nonspade_norm_layer('spectralsync_batch')``: spectral conv without bias + BatchNorm."""
    conv = spectral_norm(nn.Conv2d(fin, fout, k, padding=k // 2, stride=stride))
    del conv.bias
    conv.register_parameter("bias", None)
    return nn.Sequential(nn.Sequential(conv, nn.BatchNorm2d(fout, affine=True)), nn.LeakyReLU(0.2, True))


class CcCondConvGenerator(nn.Module):
    """CC-FPSE's CondConvGenerator (COCO: normal upsampling, ``--use_vae``)."""

    def __init__(self, ngf: int, crop_size: int, z_dim: int, snc: int = SEMANTIC_NC) -> None:
        super().__init__()
        self.ngf, self.sw = ngf, crop_size // 32
        self.fc = nn.Linear(z_dim, 16 * ngf * self.sw * self.sw)
        self.labelenc1 = _cc_norm_conv(snc, ngf, 3)
        for k in range(2, 7):
            setattr(self, f"labelenc{k}", _cc_norm_conv(ngf, ngf, 3, 2))
        for k in range(1, 6):
            setattr(self, f"labellat{k}", _cc_norm_conv(ngf, ngf, 1))
        for k in range(1, 6):
            setattr(self, f"labeldec{k}", _cc_norm_conv(ngf, ngf, 3))
        widths = [(16, 16), (16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1)]
        for name, (a, b) in zip(BLOCKS, widths, strict=True):
            setattr(self, name, CcBlock(a * ngf, b * ngf, snc + ngf))
        self.conv_img = nn.Conv2d(ngf, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        _settle(self)

    def forward(self, seg: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, 16 * self.ngf, self.sw, self.sw)
        s1 = self.labelenc1(seg)
        s2 = self.labelenc2(s1)
        s3 = self.labelenc3(s2)
        s4 = self.labelenc4(s3)
        s5 = self.labelenc5(s4)
        o1 = self.labelenc6(s5)
        o2 = self.labeldec1(self.up(o1) + self.labellat1(s5))
        o3 = self.labeldec2(self.up(o2) + self.labellat2(s4))
        o4 = self.labeldec3(self.up(o3) + self.labellat3(s3))
        o5 = self.labeldec4(self.up(o4) + self.labellat4(s2))
        o6 = self.labeldec5(self.up(o5) + self.labellat5(s1))

        def c(t: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
            return torch.cat((F.interpolate(seg, size=t.shape[2:], mode="nearest"), o), dim=1)

        x = self.up(self.head_0(x, c(x, o1)))
        x = self.G_middle_0(x, c(x, o2))
        x = self.up(self.G_middle_1(x, c(x, o2)))
        x = self.up(self.up_0(x, c(x, o3)))
        x = self.up(self.up_1(x, c(x, o4)))
        x = self.up(self.up_2(x, c(x, o5)))
        x = self.up_3(x, c(x, o6))
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

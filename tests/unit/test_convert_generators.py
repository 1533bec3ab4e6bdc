"""SPADE and CC-FPSE converters: checkpoints written in the released key layouts (tiny ngf,
:mod:`tests.released_layouts`) convert, load through the synthesizers' loaders, and reproduce the
released forward pass; other variants are refused with a clear message; the canvas encoding is
NVlabs'."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference_pipeline.synthesize import ccfpse, spade
from reference_pipeline.synthesize.convert import ccfpse_from_release, spade_from_nvlabs
from tests.released_layouts import CcCondConvGenerator, NvSPADEGenerator
from trecs_eval.cli import main
from trecs_eval.errors import InputError

CROP = 64
NGF = 2
Z_DIM = 8
FORWARD_ABS_TOL = 1e-5  # float32, same operations in another order (spectral norm folded once)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def canvas(size: int = CROP) -> tuple[np.ndarray, np.ndarray]:
    """A COCO-Stuff canvas (project ids, 0 = unlabeled) with three regions and two instances."""
    labels = np.full((size, size), 124, dtype=np.uint8)  # grass
    labels[: size // 3] = 157  # sky-other
    labels[size // 2:, size // 4: size // 2] = 18  # dog
    labels[0, 0] = 0  # an unlabeled pixel: NVlabs' dontcare
    instances = (labels == 18).astype(np.int32)
    return labels, instances


def nvlabs_encoding(labels: np.ndarray, instances: np.ndarray) -> torch.Tensor:
    """NVlabs' preprocess_input restated: COCO-Stuff maps hold id-1 (0..181) and 255 unlabeled,
    255 -> label_nc (182), one-hot over 183, then get_edges of the instance map."""
    nv = labels.astype(np.int64) - 1
    nv[labels == 0] = 255
    nv[nv == 255] = 182
    onehot = torch.zeros(1, 183, *labels.shape).scatter_(1, torch.from_numpy(nv)[None, None], 1.0)
    t = torch.from_numpy(instances)[None, None]
    edge = torch.zeros_like(t, dtype=torch.bool)
    edge[:, :, :, 1:] |= t[:, :, :, 1:] != t[:, :, :, :-1]
    edge[:, :, :, :-1] |= t[:, :, :, 1:] != t[:, :, :, :-1]
    edge[:, :, 1:, :] |= t[:, :, 1:, :] != t[:, :, :-1, :]
    edge[:, :, :-1, :] |= t[:, :, 1:, :] != t[:, :, :-1, :]
    return torch.cat([onehot, edge.float()], dim=1)


def test_canvas_encoding_is_nvlabs():
    labels, instances = canvas(16)
    assert torch.equal(spade.semantic_input(labels, instances), nvlabs_encoding(labels, instances))


def test_spade_release_converts_and_reproduces_the_released_forward(tmp_path):
    torch.manual_seed(0)
    released = NvSPADEGenerator(NGF, CROP)
    state = released.state_dict()
    assert "head_0.conv_0.weight_orig" in state and "head_0.norm_0.param_free_norm.running_var" in state
    assert state["fc.weight"].shape == (16 * NGF, 184, 3, 3)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    out = tmp_path / "spade.pt"
    # a conv-fc (non-VAE) checkpoint does not say its size: NVlabs COCO is 256, this tiny one 64
    assert main(["pipeline", "convert-spade", str(path), "--out", str(out), "--crop-size", str(CROP)]) == 0
    synth = spade.SpadeSynthesizer(out)
    assert synth.model.config == spade.SpadeConfig(ngf=NGF, nhidden=128, crop_size=CROP, norm="batch",
                                                   use_vae=False)
    labels, instances = canvas()
    with torch.no_grad():
        want = released(nvlabs_encoding(labels, instances))
        got = synth.model(spade.semantic_input(labels, instances))
    assert torch.allclose(got, want, atol=FORWARD_ABS_TOL)
    image = synth(labels, instances, seed=1)
    expected = ((want[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert image.shape == (CROP, CROP, 3) and np.abs(image.astype(int) - expected).max() <= 1
    assert main(["pipeline", "convert-spade", str(path), "--out", str(out)]) == 2  # never overwrites


def test_ccfpse_release_converts_and_reproduces_the_released_forward(tmp_path):
    torch.manual_seed(0)
    released = CcCondConvGenerator(NGF, CROP, Z_DIM)
    state = released.state_dict()
    assert {"labelenc1.0.0.weight_orig", "labelenc1.0.1.running_mean", "head_0.conv_0.norm_layer.weight",
            "head_0.gen_weights1.2.weight", "up_0.conv_s.weight_u",
            "up_0.norm_s.mlp_gamma.weight"} <= set(state)
    path = tmp_path / "100_net_G.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # as saved from DataParallel
    out = tmp_path / "ccfpse.pt"
    assert main(["pipeline", "convert-ccfpse", str(path), "--out", str(out)]) == 0
    synth = ccfpse.CcfpseSynthesizer(out)
    assert synth.model.config == ccfpse.CcfpseConfig(ngf=NGF, z_dim=Z_DIM, crop_size=CROP)
    labels, instances = canvas()
    z = torch.randn(1, Z_DIM, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = released(nvlabs_encoding(labels, instances), z)
        got = synth.model(spade.semantic_input(labels, instances), z)
    assert torch.allclose(got, want, atol=FORWARD_ABS_TOL)
    a, b, c = synth(labels, instances, 1), synth(labels, instances, 1), synth(labels, instances, 2)
    assert a.shape == (CROP, CROP, 3) and a.tobytes() == b.tobytes() != c.tobytes()


def test_other_checkpoints_are_refused(tmp_path):
    torch.manual_seed(0)
    ade = tmp_path / "ade.pth"
    torch.save(NvSPADEGenerator(NGF, CROP, label_nc=152).state_dict(), ade)
    with pytest.raises(InputError, match=r"152 input channels \(ADE20K.*only the COCO-Stuff model \(184"):
        spade_from_nvlabs(ade)
    with pytest.raises(InputError, match="not a CC-FPSE CondConvGenerator"):
        ccfpse_from_release(ade)
    cc = tmp_path / "cc.pth"
    torch.save(CcCondConvGenerator(NGF, CROP, Z_DIM).state_dict(), cc)
    with pytest.raises(InputError, match="not an NVlabs SPADEGenerator"):
        spade_from_nvlabs(cc)
    broken = tmp_path / "broken.pth"
    state = NvSPADEGenerator(NGF, CROP).state_dict()
    del state["up_1.conv_1.bias"]
    torch.save(state, broken)
    with pytest.raises(InputError, match=r"not an NVlabs SPADE generator.*1 missing keys.*up_1\.conv_1\.bia"):
        spade_from_nvlabs(broken)
    pickled = tmp_path / "pickled.pth"
    torch.save({"opt": object.__new__(spade.SpadeConfig)}, pickled)
    with pytest.raises(InputError, match="weights-only"):
        spade_from_nvlabs(pickled)
    with pytest.raises(InputError, match="crop_size 64, not 128"):
        ccfpse_from_release(cc, crop_size=128)

"""Damaged or hostile generator checkpoints: `pipeline convert-spade` / `convert-ccfpse` and the
synthesizers' loaders refuse them with one line naming the file and what is wrong (exit 2), before
any memory is spent on a model the file only pretends to hold."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from reference_pipeline.synthesize import ccfpse, spade
from tests.released_layouts import CcCondConvGenerator, NvSPADEGenerator
from trecs_eval.cli import main
from trecs_eval.errors import InputError

CROP, NGF, Z_DIM = 64, 2, 8
Tamper = Callable[[dict[str, torch.Tensor]], None]


@functools.cache
def _released(kind: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = NvSPADEGenerator(NGF, CROP) if kind == "spade" else CcCondConvGenerator(NGF, CROP, Z_DIM)
    return dict(model.state_dict())


def _spade_state() -> dict[str, torch.Tensor]:
    return dict(_released("spade"))  # a new dict each time; tampering replaces, never edits, tensors


def _ccfpse_state() -> dict[str, torch.Tensor]:
    return dict(_released("ccfpse"))


def _drop(*keys: str) -> Tamper:
    def tamper(state: dict[str, torch.Tensor]) -> None:
        for key in keys:
            del state[key]
    return tamper


def _set(key: str, value: torch.Tensor) -> Tamper:
    def tamper(state: dict[str, torch.Tensor]) -> None:
        state[key] = value
    return tamper


def _lying_width(state: dict[str, torch.Tensor]) -> None:
    """A head conv announcing ngf = 4096: a real model of that width needs ~100 GB."""
    state["head_0.conv_0.weight_orig"] = torch.ones(16 * 4096, 1, 1, 1)
    state["head_0.conv_0.weight_u"] = torch.ones(16 * 4096)
    state["head_0.conv_0.weight_v"] = torch.ones(1)


def _nan(key: str) -> Tamper:
    def tamper(state: dict[str, torch.Tensor]) -> None:
        state[key] = state[key].clone()
        state[key].view(-1)[0] = float("nan")
    return tamper


SPADE_CASES: dict[str, tuple[Tamper, str]] = {
    "missing layer": (_drop("head_0.conv_0.weight_orig", "head_0.conv_0.weight_u", "head_0.conv_0.weight_v"),
                      "this is not a SPADE COCO generator: missing head_0.conv_0.weight"),
    "weight_orig without weight_u": (_drop("up_0.conv_0.weight_u"),
                                     "this is not a SPADE COCO generator: missing up_0.conv_0.weight_u"),
    "zero-width layer": (_set("head_0.conv_0.weight_orig", torch.zeros(0, 4, 3, 3)),
                         "head_0.conv_0.weight_orig is empty"),
    "narrower than 16 channels": (
        lambda s: s.update({"head_0.conv_0.weight_orig": torch.ones(8, 4, 3, 3), "head_0.conv_0.weight_u":
                            torch.ones(8), "head_0.conv_0.weight_v": torch.ones(36)}),
        "head_0.conv_0.weight has 8 output channels, not a positive multiple of 16"),
    "u and v that do not fit": (_set("up_1.conv_0.weight_v", torch.ones(3)), "do not fit together"),
    "zero spectral norm": (lambda s: s.update(
        {"up_1.conv_0.weight_u": torch.zeros_like(s["up_1.conv_0.weight_u"])}),
        "the spectral norm of up_1.conv_0.weight is 0.0"),
    "NaN weight": (_nan("fc.weight"), "fc.weight holds NaN"),
    "1-d mlp": (_set("head_0.norm_0.mlp_shared.0.weight", torch.ones(5)),
                "head_0.norm_0.mlp_shared.0.weight has shape (5,)"),
    "width that would not fit in memory": (_lying_width, "expected (65536, 184, 3, 3)"),
    "not a tensor": (_set("fc.bias", 3), "expected a bare generator state_dict"),  # type: ignore[arg-type]
}

CCFPSE_CASES: dict[str, tuple[Tamper, str]] = {
    "missing predictor": (_drop("head_0.gen_weights1.0.weight"),
                          "this is not a CC-FPSE COCO generator: missing head_0.gen_weights1.0.weight"),
    "weight_orig without weight_u": (_drop("labelenc1.0.0.weight_u"),
                                     "this is not a CC-FPSE COCO generator: missing labelenc1.0.0.weight_u"),
    "zero-width label encoder": (
        lambda s: s.update({"labelenc1.0.0.weight_orig": torch.zeros(0, 184, 3, 3)}),
        "labelenc1.0.0.weight_orig is empty"),
    "fc whose width is not 16·ngf·s²": (_set("fc.weight", torch.ones(7, Z_DIM)),
                                         "fc.weight has 7 outputs, not 16·ngf·s²"),
}


def _run(tmp_path: Path, command: str, state: dict[str, torch.Tensor], capsys: pytest.CaptureFixture[str],
         *extra: str) -> str:
    path = tmp_path / "net_G.pth"
    torch.save(state, path)
    capsys.readouterr()
    code = main(["-q", "pipeline", command, str(path), "--out", str(tmp_path / "out.pt"), *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("  hint:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert str(path) in lines[0]
    assert not (tmp_path / "out.pt").exists()
    return lines[0]


@pytest.mark.parametrize("case", sorted(SPADE_CASES))
def test_a_damaged_spade_checkpoint_is_one_line(case: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    tamper, expected = SPADE_CASES[case]
    state = _spade_state()
    tamper(state)
    assert expected in _run(tmp_path, "convert-spade", state, capsys, "--crop-size", str(CROP))


@pytest.mark.parametrize("case", sorted(CCFPSE_CASES))
def test_a_damaged_ccfpse_checkpoint_is_one_line(case: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    tamper, expected = CCFPSE_CASES[case]
    state = _ccfpse_state()
    tamper(state)
    assert expected in _run(tmp_path, "convert-ccfpse", state, capsys)


@pytest.mark.parametrize("crop", ["0", "-32", "48", "1000000"])
def test_a_crop_size_out_of_range_is_refused(crop: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert "must be a multiple of 32 in [32, 2048]" in _run(
        tmp_path, "convert-spade", _spade_state(), capsys, "--crop-size", crop)


@pytest.mark.parametrize(("module", "change", "expected"), [
    (spade, {"config": {"ngf": 100_000}}, "does not fit a SPADE generator: fc.weight has shape"),
    (spade, {"config": ["ngf", 2]}, "the config is a list, not a table"),
    (spade, {"config": {"ngf": "2"}}, "the checkpoint does not fit a SPADE generator"),
    (spade, {"config": {"crop_size": 10**7}}, "crop_size must be a multiple of 32"),
    (spade, {"state_dict": None}, "the state_dict is not a table"),
    (ccfpse, {"config": {"ngf": -4}}, "the checkpoint does not fit a CC-FPSE generator"),
    (ccfpse, {"state_dict": {"fc.weight": torch.ones(2, 2)}}, "missing keys"),
])
def test_a_converted_checkpoint_with_a_hostile_config_is_refused(module, change, expected, tmp_path):
    if module is spade:
        model = spade.SPADEGenerator(spade.SpadeConfig(ngf=NGF, crop_size=CROP))
    else:
        model = ccfpse.CondConvGenerator(ccfpse.CcfpseConfig(ngf=NGF, z_dim=Z_DIM, crop_size=CROP))
    path = tmp_path / "converted.pt"
    module.save_checkpoint(model, path)
    checkpoint = torch.load(path, weights_only=True)
    for key, value in change.items():
        merge = isinstance(value, dict) and key == "config"
        checkpoint[key] = {**checkpoint[key], **value} if merge else value
    torch.save(checkpoint, path)
    with pytest.raises(InputError, match=expected) as caught:
        module.load_generator(path)
    assert str(path) in str(caught.value)

"""No weights file we are handed can run code: crafted pickles are refused with one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trecs_eval.errors import InputError, MissingWeightsError
from trecs_eval.features import weights as weights_module
from trecs_eval.features.weight_files import (
    is_torchscript_archive,
    load_state_dict_file,
    read_torchscript_tensors,
    sha256_sidecar,
)
from trecs_eval.features.weights import resolve_inception_weights

REPO = Path(__file__).resolve().parents[2]


class _Payload:
    """Unpickling this creates the marker file: what an attacker's code would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _evil_pth(path: Path, marker: Path) -> Path:
    torch.save({"Conv2d_1a_3x3.conv.weight": _Payload(marker)}, path)
    return path


def _evil_torchscript(path: Path, marker: Path) -> Path:
    """A zip laid out as a TorchScript archive whose data.pkl asks for code."""
    import pickle

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(_Payload(marker), protocol=2))
        archive.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("evil/code/__torch__/net.py", "class Net(Module):\n  pass\n")
        archive.writestr("evil/version", "3\n")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRECS_EVAL_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "trecs_eval", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess[str], name: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("trecs-eval: error:")]
    assert len(errors) == 1 and name in errors[0], proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == errors[0]  # nothing after it: one line


def test_crafted_inception_pth_is_refused_by_the_cli_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    evil = _evil_pth(tmp_path / "evil.pth", marker)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(images / f"{i}.png")
    proc = _cli("metrics", "--generated", str(images), "--reference", str(images), "--metrics", "fid",
                "--inception-weights", str(evil), "--device", "cpu", "-q")
    _one_line_error(proc, "evil.pth")
    assert not marker.exists()


def test_crafted_torchscript_archive_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    evil = _evil_torchscript(tmp_path / "evil.pt", marker)
    assert is_torchscript_archive(evil)
    weights = resolve_inception_weights(evil)
    assert weights.format == "nvidia-torchscript" and not weights.has_classifier
    from trecs_eval.features.inception import load_inception

    with pytest.raises(InputError, match=r"evil\.pt.*io\.open is not allowed") as err:
        load_inception(weights, torch.device("cpu"))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError):
        read_torchscript_tensors(evil)
    assert not marker.exists()


def test_state_dict_loader_refuses_code_and_non_dicts(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    with pytest.raises(InputError, match="only tensors may be unpickled"):
        load_state_dict_file(_evil_pth(tmp_path / "evil.pth", marker), field="f")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(InputError, match="expected a state dict, found list"):
        load_state_dict_file(tmp_path / "list.pth", field="f")
    assert not marker.exists()


def test_cached_random_weights_are_checked_by_sha256_and_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached file swapped for a crafted pickle no longer matches its recorded sha256: it is made
    again before anything loads it (and even unchecked it would only go through weights_only)."""
    calls: list[int] = []

    def fake_make(path: Path, seed: int) -> str:
        calls.append(seed)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"w": torch.full((2,), float(seed))}, path)
        return ""

    import trecs_eval.features.calibration as calibration

    monkeypatch.setattr(calibration, "make_calibrated_inception_weights", fake_make)
    first = resolve_inception_weights(uncalibrated=True, seed=5)
    assert sha256_sidecar(first.path).read_text().strip() == first.sha256
    marker = tmp_path / "MARKER"
    _evil_pth(first.path, marker)  # tampered in place
    again = resolve_inception_weights(uncalibrated=True, seed=5)
    assert calls == [5, 5] and again.sha256 == first.sha256
    assert load_state_dict_file(again.path, field="f")["w"].tolist() == [5.0, 5.0]
    assert not marker.exists()


def test_packaged_weights_with_a_wrong_sha256_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the pinned file")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no release file cached
    monkeypatch.setattr(weights_module, "packaged_weights_path", lambda: fake)
    with pytest.raises(MissingWeightsError, match="expected 7ff4a85c3a6378f0") as err:
        resolve_inception_weights()
    assert "--no-deps" in str(err.value)


def test_crafted_clip_checkpoint_is_one_line_error_without_running(tmp_path: Path) -> None:
    from trecs_eval.features.clip_weights import load_clip_model

    marker = tmp_path / "MARKER"
    evil = tmp_path / "clip.pt"
    torch.save({"visual.proj": _Payload(marker)}, evil)
    with pytest.raises(InputError, match=r"clip\.pt.*only tensors may be unpickled") as err:
        load_clip_model("ViT-B-32", str(evil), "cpu")
    assert "\n" not in str(err.value) and not marker.exists()


def test_default_clip_tag_file_is_checked_against_its_pinned_sha256(tmp_path: Path) -> None:
    from trecs_eval.features.clip_weights import PINNED_SHA256, check_pinned_sha256

    fake = tmp_path / "open_clip_model.safetensors"
    fake.write_bytes(b"tampered")
    with pytest.raises(MissingWeightsError, match=r"pinned: open_clip_model\.safetensors e6d1bd77"):
        check_pinned_sha256("ViT-B-32", "openai", str(fake))
    check_pinned_sha256("ViT-B-16", "openai", str(fake))  # no pin: recorded only, not refused
    assert set(PINNED_SHA256) == {("ViT-B-32", "openai")}

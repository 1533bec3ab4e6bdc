"""A diffusers model folder handed to us by someone else: a pickled weight file with a payload is
refused by torch's weights-only loader (nothing runs) and the user gets one line naming that file,
not torch's multi-line UnpicklingError; a folder that fails in another way is one line too."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from baselines.diffusers_t2i import DiffusersGenerator
from tests.diffusion_support import build_tiny_pipeline
from trecs_eval.errors import TrecsEvalError
from trecs_eval.generation.protocol import GeneratorContext


class Payload:
    """Unpickling this runs ``touch MARKER`` (with a loader that is not weights-only)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "sd")


def _copy(tiny_sd: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_sd, folder)
    return folder


def _load(folder: Path) -> TrecsEvalError:
    with pytest.raises(TrecsEvalError) as caught:
        DiffusersGenerator({"model": str(folder), "text_policy": "truncate"}, GeneratorContext(device="cpu"))
    message = str(caught.value)
    assert len([line for line in message.splitlines() if not line.startswith("  hint:")]) == 1, message
    return caught.value


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_a_text_encoder_pickle_with_a_payload_is_one_line_naming_the_file(tiny_sd, tmp_path, protocol):
    folder = _copy(tiny_sd, tmp_path)
    encoder = folder / "text_encoder"
    for weights in encoder.glob("*.safetensors"):
        weights.unlink()
    marker = tmp_path / "PAYLOAD-RAN"
    with open(encoder / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"text_model.embeddings.position_ids": Payload(marker)}, fh, protocol=protocol)
    error = _load(folder)
    assert str(encoder / "pytorch_model.bin") in str(error) and "not a weights-only torch file" in str(error)
    assert "unsupported" in str(error).lower()  # torch's reason, not its boilerplate
    assert not marker.exists()


def test_a_folder_with_a_broken_config_is_one_line(tiny_sd, tmp_path):
    folder = _copy(tiny_sd, tmp_path)
    config = folder / "unet" / "config.json"
    data = json.loads(config.read_text())
    data["block_out_channels"] = "wide"  # parses, but the UNet cannot be built from it
    config.write_text(json.dumps(data))
    error = _load(folder)
    assert "cannot load model" in str(error) and str(folder) in str(error)

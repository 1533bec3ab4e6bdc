"""DINOv2 extractor: dgm-eval preprocessing, the weights sources through one loader, cache, identity.

Real DINOv2 weights are not available here: every loading path is exercised with seeded,
calibrated random ViT-S/14 weights written to files the tests make themselves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.clip_support import write_test_images
from trecs_eval.errors import InputError, MissingWeightsError, UnknownNameError
from trecs_eval.features import dinov2_weights as dw
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.dinov2 import DinoV2Extractor, normalize_batch, preprocess_dgm_eval
from trecs_eval.features.identity import sha256_file
from trecs_eval.features.weight_files import sha256_sidecar
from trecs_eval.metrics.fid import features_to_fid

ARCH = "vits14"  # the small member of the family: the same code as ViT-L/14, ~20x cheaper
PREPROCESS_ABS_TOL_VS_TORCHVISION = 1e-6  # the same PIL resize; float32 division only
BATCH_INVARIANCE_ABS_TOL = 1e-4  # float32 forward passes of different batch compositions
MAX_MEAN_OFF_DIAGONAL_COS = 0.5  # calibrated random features must spread over the sphere


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dinov2") / "vits14-random.safetensors"
    dw.make_calibrated_dinov2_weights(path, ARCH, seed=0)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    return write_test_images(tmp_path_factory.mktemp("imgs"), 6, size=48, seed=3)


@pytest.fixture(scope="module")
def extracted(weights_file, images, tmp_path_factory) -> tuple[DinoV2Extractor, np.ndarray]:
    """One extractor and the features of the six images (ViT-S at 224 px: ~1 s per image here)."""
    cache = FeatureCache(tmp_path_factory.mktemp("cache") / "c.sqlite")
    ext = DinoV2Extractor(arch=ARCH, weights=str(weights_file), device="cpu", cache=cache,
                          progress=False, batch_size=4)
    return ext, ext.extract(images).features


def test_preprocessing_matches_dgm_eval_torchvision_transform(tmp_path) -> None:
    import torchvision.transforms as tvt

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 61, 3), dtype=np.uint8)  # not square: dgm-eval does not crop
    pil = Image.fromarray(rgb)
    ref = tvt.Compose([tvt.Resize((224, 224), tvt.InterpolationMode.BICUBIC), tvt.ToTensor(),
                       tvt.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])(pil)
    ours = normalize_batch(preprocess_dgm_eval(rgb)[None])[0]
    assert ours.shape == (3, 224, 224)
    assert torch.allclose(ours, ref, atol=PREPROCESS_ABS_TOL_VS_TORCHVISION)


def test_release_names_and_defining_backbone() -> None:
    import timm

    assert dw.ARCHS[dw.DEFINING_ARCH] == "vit_large_patch14_dinov2.lvd142m"
    for name in dw.ARCHS.values():
        assert name in timm.list_pretrained(name.split(".")[0] + "*")
    with pytest.raises(UnknownNameError, match="did you mean"):
        dw.check_arch("vitl16")


def test_pos_embed_resampling_keeps_constants_and_reaches_the_grid() -> None:
    pos = torch.full((1, 1 + 37 * 37, 8), 0.25)
    out = dw.resample_pos_embed_like_dinov2(pos, 16)
    assert out.shape == (1, 1 + 16 * 16, 8)
    assert torch.allclose(out, torch.full_like(out, 0.25), atol=1e-6)
    same = torch.randn(1, 1 + 16 * 16, 8)
    assert dw.resample_pos_embed_like_dinov2(same, 16) is same


def test_calibrated_random_features_are_informative(extracted, images) -> None:
    ext, feats = extracted
    assert feats.shape == (6, 384) and feats.dtype == np.float32
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert (cos.sum() - np.trace(cos)) / 30 < MAX_MEAN_OFF_DIAGONAL_COS
    # batch composition does not change a row (the fixture ran batches of 4 and 2)
    single = ext.forward(torch.stack([preprocess_dgm_eval(np.asarray(Image.open(images[2]).convert("RGB")))]))
    assert np.allclose(single[0], feats[2], atol=BATCH_INVARIANCE_ABS_TOL)


def test_file_sources_share_one_loader(weights_file, extracted, images, tmp_path) -> None:
    from safetensors.torch import load_file

    ext, feats = extracted
    state = load_file(str(weights_file))
    pth = tmp_path / "timm-layout.pth"
    torch.save(state, pth)
    from_pth = DinoV2Extractor(arch=ARCH, weights=str(pth), device="cpu", progress=False)
    assert from_pth.identity.weights_sha256 != ext.identity.weights_sha256  # the file's bytes
    assert from_pth.identity.key() != ext.identity.key()
    assert np.array_equal(from_pth.extract(images[:1]).features[0], feats[0])
    meta = dict(state)  # Meta's original layout: mask_token and the 37 x 37 training grid
    meta["mask_token"] = torch.zeros(1, 384)
    meta["pos_embed"] = torch.full((1, 1 + 37 * 37, 384), 0.01)
    meta_path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save({"model": meta}, meta_path)
    model = dw.load_dinov2(dw.resolve_dinov2_weights(str(meta_path), ARCH), ARCH)
    assert torch.allclose(model.pos_embed, torch.full((1, 257, 384), 0.01), atol=1e-6)


def test_cache_identity_and_fd(extracted, images) -> None:
    ext, feats = extracted
    before = ext.forward_batches
    again = ext.extract(list(reversed(images)))
    assert ext.forward_batches == before and again.cache_hits == 6
    assert np.array_equal(again.features, feats[::-1])
    extra = ext.identity.extra
    assert extra["backbone"] == ARCH and extra["defines_fd_dinov2"] is False
    assert "dgm-eval" in ext.identity.preprocessing and "timm" in ext.identity.versions
    fd_same, _ = features_to_fid(feats[:3], feats[:3].copy())
    fd_diff, _ = features_to_fid(feats[:3], feats[3:])
    assert fd_same == pytest.approx(0.0, abs=1e-6) and fd_diff > 1.0


def test_uncalibrated_path_is_cached_by_seed_and_deterministic(weights_file) -> None:
    target = dw.calibrated_weights_path(ARCH, 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(weights_file, target)  # the module fixture's file, made by the same function
    sha256_sidecar(target).write_text(sha256_file(str(weights_file)) + "\n")  # as if made here
    before = target.stat().st_mtime_ns
    resolved = dw.resolve_dinov2_weights(None, ARCH, uncalibrated=True, seed=0)
    assert resolved.source == "calibrated-random" and resolved.uncalibrated
    assert resolved.path == target and resolved.sha256 == sha256_file(str(weights_file))
    assert target.stat().st_mtime_ns == before  # found by seed and checked, not made again


@pytest.mark.slow
def test_calibration_is_deterministic(weights_file, tmp_path) -> None:
    again = dw.make_calibrated_dinov2_weights(tmp_path / "again.safetensors", ARCH, seed=0)
    assert again == sha256_file(str(weights_file))


def _fake_hub_cache(root: Path, blob: bytes, name: str) -> Path:
    """A Hugging Face hub cache holding ``model.safetensors`` of ``timm/<release>`` under blob ``name``."""
    repo = root / f"models--timm--{dw.ARCHS[ARCH]}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / name).write_bytes(blob)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / dw.RELEASE_FILENAME).symlink_to(Path("..") / ".." / "blobs" / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return root


def test_release_weights_from_hub_cache_are_sha256_checked(weights_file, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TRECS_EVAL_OFFLINE", "1")
    data = weights_file.read_bytes()
    good = _fake_hub_cache(tmp_path / "good", data, sha256_file(str(weights_file)))
    resolved = dw.release_weights(ARCH, cache_dir=good)
    assert resolved.source == "release" and resolved.sha256 == sha256_file(str(weights_file))
    bad = _fake_hub_cache(tmp_path / "bad", data[:-1] + b"x", sha256_file(str(weights_file)))
    with pytest.raises(MissingWeightsError, match="corrupt"):
        dw.release_weights(ARCH, cache_dir=bad)
    with pytest.raises(MissingWeightsError, match="--uncalibrated-weights"):
        dw.release_weights(ARCH, cache_dir=tmp_path / "empty")


def test_bad_weights_files_are_input_errors(weights_file, tmp_path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="refused to load DINOv2 weights"):
        dw.read_state_dict(junk)
    from safetensors.torch import load_file

    partial = load_file(str(weights_file))
    partial.pop("blocks.3.mlp.fc1.weight")
    partial_path = tmp_path / "partial.pth"
    torch.save(partial, partial_path)
    with pytest.raises(InputError, match="not a DINOv2 vits14 state dict"):
        dw.load_dinov2(dw.resolve_dinov2_weights(str(partial_path), ARCH), ARCH)
    with pytest.raises(InputError, match="not found"):
        DinoV2Extractor(arch=ARCH, weights=str(tmp_path / "absent.safetensors"))

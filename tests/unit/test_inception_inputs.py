"""Image decoding and preprocessing, weight resolution errors, the calibrated random init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from trecs_eval.errors import InputError, MissingWeightsError
from trecs_eval.features import weights as weights_module
from trecs_eval.features.images import (
    decode_rgb,
    image_batches,
    inspect_images,
    list_images,
    preprocess,
    resize_tf1,
)
from trecs_eval.features.weights import resolve_inception_weights


def test_modes_are_converted_counted_and_formats_noted(tmp_path: Path) -> None:
    rgb = (np.arange(16 * 16 * 3) % 251).astype(np.uint8).reshape(16, 16, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "b.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "c.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "d.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "e.jpg")
    Image.fromarray(rgb).save(tmp_path / "f.JPEG")
    (tmp_path / "notes.txt").write_text("not an image")
    paths = list_images(tmp_path)
    assert [p.name for p in paths] == ["a.png", "b.png", "c.png", "d.png", "e.jpg", "f.JPEG"]
    report = inspect_images(paths)
    assert report.formats == {"PNG": 4, "JPEG": 2}
    assert report.conversions == {"L->RGB": 1, "P->RGB": 1, "RGBA->RGB": 1, "CMYK->RGB": 1}
    for path in paths:
        decoded = decode_rgb(path)
        assert decoded.shape == (16, 16, 3) and decoded.dtype == np.uint8
    gray = decode_rgb(tmp_path / "b.png")
    assert np.array_equal(gray[..., 0], gray[..., 2])  # grey replicated to 3 channels


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        list_images(tmp_path / "missing")
    with pytest.raises(InputError, match="no images"):
        list_images(tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match=r"broken\.png"):
        inspect_images([broken])
    with pytest.raises(InputError, match="preprocessing"):
        preprocess(np.zeros((4, 4, 3), np.uint8), "bilinear")


def test_worker_decode_failure_comes_back_as_a_clean_error(tmp_path: Path) -> None:
    truncated = tmp_path / "t.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])  # header fine, data cut
    (index, _, errors), = list(image_batches([truncated], "tf1", batch_size=2, num_workers=1))
    assert index.tolist() == [0] and "t.png" in errors[0]


def test_tf1_preprocessing_equals_torch_fidelity_batched_resize() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
    batched = interpolate_bilinear_2d_like_tensorflow1x(
        torch.from_numpy(images).permute(0, 3, 1, 2).float(), size=(299, 299), align_corners=False)
    for i in range(3):
        assert torch.equal(preprocess(images[i], "tf1"), batched[i])


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 700), width=st.integers(1, 700), size=st.sampled_from([299, 64, 1, 333]),
       integral=st.booleans(), seed=st.integers(0, 2**16))
def test_resize_tf1_is_bit_identical_to_torch_fidelity(height: int, width: int, size: int,
                                                       integral: bool, seed: int) -> None:
    """Down- and upsampling, odd shapes, 1-pixel images, decoded (integral) and float inputs, a batch."""
    rng = np.random.default_rng(seed)
    shape = (2, 3, height, width)
    values = rng.integers(0, 256, shape) if integral else rng.random(shape) * 255
    x = torch.from_numpy(values.astype(np.float32))
    theirs = interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)
    assert torch.equal(resize_tf1(x, size), theirs)


def test_clean_preprocessing_is_float_bicubic_per_channel() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    out = preprocess(rgb, "clean")
    assert out.shape == (3, 299, 299) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 255.0
    green = Image.fromarray(rgb[:, :, 1].astype(np.float32), mode="F").resize((299, 299), Image.BICUBIC)
    np.testing.assert_array_equal(out[1].numpy(), np.clip(np.asarray(green), 0, 255))
    assert not np.array_equal(out.numpy(), preprocess(rgb, "tf1").numpy())  # the modes differ


def test_missing_weights_offline_names_both_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(weights_module.OFFLINE_ENV, "1")
    monkeypatch.setattr(weights_module, "packaged_weights_path", lambda: None)  # no weights extra
    with pytest.raises(MissingWeightsError) as err:
        resolve_inception_weights()
    assert "--inception-weights PATH" in str(err.value) and "--uncalibrated-weights" in str(err.value)
    assert "trecs-eval[weights]" in str(err.value)


def test_failed_download_is_missing_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights_module, "packaged_weights_path", lambda: None)
    monkeypatch.delenv(weights_module.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(weights_module, "INCEPTION_URL", "http://127.0.0.1:9/weights-x-6726825d.pth")
    with pytest.raises(MissingWeightsError, match="downloading"):
        resolve_inception_weights()


def test_release_file_with_wrong_checksum_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    target = weights_module._hub_checkpoint_path(weights_module.INCEPTION_URL)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"tampered")
    with pytest.raises(MissingWeightsError, match="sha256"):
        resolve_inception_weights()


def test_local_weights_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        resolve_inception_weights(tmp_path / "nope.pth")
    with pytest.raises(InputError, match="not found"):
        resolve_inception_weights(tmp_path / "nope.pth", uncalibrated=True)
    junk = tmp_path / "junk.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, junk)
    from trecs_eval.features.inception import load_inception

    with pytest.raises(InputError, match=r"junk\.pth"):
        load_inception(resolve_inception_weights(junk), torch.device("cpu"))


def test_uncalibrated_weights_are_made_once_per_seed_in_the_cache_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, int]] = []

    def fake_make(path: Path, seed: int) -> str:  # the real maker is exercised by the fixtures
        calls.append((Path(path), seed))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(f"weights {seed}".encode())
        return ""

    import trecs_eval.features.calibration as calibration

    monkeypatch.setattr(calibration, "make_calibrated_inception_weights", fake_make)
    monkeypatch.setenv("TRECS_EVAL_CACHE", str(tmp_path / "cache"))
    first = resolve_inception_weights(uncalibrated=True, seed=3)
    again = resolve_inception_weights(uncalibrated=True, seed=3)
    other = resolve_inception_weights(uncalibrated=True, seed=4)
    assert first == again and first.uncalibrated and first.path.is_relative_to(tmp_path / "cache")
    assert other.sha256 != first.sha256 and [s for _, s in calls] == [3, 4]

"""Decoding every image mode PIL can open: 8-bit modes through PIL, 16-bit grayscale scaled (not
clipped), float in [0, 1] scaled, alpha dropped; bombs and same-stem pairs are one clear error."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trecs_eval.errors import InputError
from trecs_eval.features.decode import decode_rgb, open_image
from trecs_eval.features.images import inspect_images, list_images

# (mode written, file format): every mode PIL can create and save in a format it reads back
SAVABLE = [("1", "PNG"), ("L", "PNG"), ("P", "PNG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"),
           ("I;16", "PNG"), ("I;16B", "PNG"), ("I;16", "TIFF"), ("I;16B", "TIFF"), ("I;16L", "TIFF"),
           ("I", "TIFF"), ("F", "TIFF"), ("CMYK", "TIFF"), ("CMYK", "JPEG"), ("YCbCr", "TIFF"),
           ("LAB", "TIFF"), ("PA", "TIFF"), ("RGBX", "TIFF"), ("L", "JPEG"), ("RGB", "JPEG"),
           ("P", "GIF"), ("RGBA", "WEBP"), ("1", "BMP")]
RAMP_16 = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)  # 0, 257, ..., 65535: 8-bit k -> 257k


def _write(path: Path, image: Image.Image, fmt: str) -> Path:
    image.save(path, format=fmt)
    return path


@pytest.mark.parametrize(("mode", "fmt"), SAVABLE)
def test_every_mode_decodes_to_rgb_uint8_without_a_warning(mode, fmt, tmp_path):
    image = Image.new(mode, (8, 6))
    path = _write(tmp_path / f"x.{fmt.lower()}", image, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. PIL's "palette images with transparency" warning
        rgb = decode_rgb(path)
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8


SIXTEEN_BIT = [("I;16", "PNG"), ("I;16B", "TIFF"), ("I;16L", "TIFF"), ("I", "TIFF")]


@pytest.mark.parametrize(("mode", "fmt"), SIXTEEN_BIT)
def test_16_bit_grayscale_is_scaled_not_clipped(mode, fmt, tmp_path):
    dtype = {"I": "<i4", "I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2"}[mode]
    image = Image.frombytes(mode, (16, 16), RAMP_16.astype(dtype).tobytes())
    path = _write(tmp_path / f"ramp.{fmt.lower()}", image, fmt)
    rgb = decode_rgb(path)
    expected = np.arange(256, dtype=np.uint8).reshape(16, 16)  # 257k / 257 = k exactly
    np.testing.assert_array_equal(rgb[:, :, 0], expected)
    assert (rgb == rgb[:, :, :1]).all()
    assert (rgb == 255).mean() < 0.01  # PIL's convert("RGB") made 99.6 % of this ramp white


def test_16_bit_scaling_rounds_to_the_nearest_8_bit_value(tmp_path):
    values = np.array([[0, 128, 129, 385, 386, 65535]], dtype=np.uint16)  # 128/257 < .5 < 129/257
    rgb = decode_rgb(_write(tmp_path / "r.png", Image.fromarray(values), "PNG"))
    np.testing.assert_array_equal(rgb[0, :, 0], np.round(values[0] / 257.0).astype(np.uint8))


def test_float_images_in_unit_range_are_scaled_and_others_refused(tmp_path):
    ramp = np.linspace(0, 1, 11, dtype=np.float32)[None, :]
    rgb = decode_rgb(_write(tmp_path / "f.tiff", Image.fromarray(ramp, mode="F"), "TIFF"))
    np.testing.assert_array_equal(rgb[0, :, 1], np.rint(ramp[0].astype(np.float64) * 255).astype(np.uint8))
    bad = _write(tmp_path / "g.tiff", Image.fromarray(ramp * 300, mode="F"), "TIFF")
    with pytest.raises(InputError, match=r"g\.tiff.*must hold values in \[0, 1\]"):
        decode_rgb(bad)


def test_palette_transparency_and_alpha_are_dropped_keeping_the_colours(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.info["transparency"] = 1
    rgb = decode_rgb(_write(tmp_path / "p.png", palette, "PNG"))
    assert (rgb == np.array([200, 100, 50], np.uint8)).all()
    la = Image.fromarray(np.dstack([np.full((4, 4), 77, np.uint8), np.zeros((4, 4), np.uint8)]), mode="LA")
    assert (decode_rgb(_write(tmp_path / "la.png", la, "PNG")) == 77).all()


def test_a_decompression_bomb_is_one_line_naming_the_file(tmp_path, monkeypatch):
    path = _write(tmp_path / "bomb.png", Image.new("L", (100, 100)), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 // 3)  # 3x the limit: PIL's error
    with pytest.raises(InputError, match=r"bomb\.png.*decompression bomb") as err:
        decode_rgb(path)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 - 1)  # just over: PIL only warns
    with pytest.raises(InputError, match=r"bomb\.png.*decompression bomb"):
        inspect_images([path])


def test_a_truncated_file_is_an_input_error_naming_it(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[:60])
    with pytest.raises(InputError, match=r"cut\.png"), open_image(path) as image:
        image.load()


def test_two_images_with_one_stem_name_both_files(tmp_path):
    for name in ("a.png", "a.jpg", "b.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    with pytest.raises(InputError, match=r"a\.jpg and .*a\.png share the item id 'a'"):
        list_images(tmp_path)

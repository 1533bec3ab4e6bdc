"""Decoding an image file of any mode to (H, W, 3) uint8 RGB, with one clear error per bad file.

Every mode PIL opens is read. 16-bit grayscale (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``, and
``I`` holding values in [0, 65535]) is scaled to 8 bits as ``round(v * 255 / 65535)`` (65535 ->
255; PIL's own ``convert("RGB")`` clips at 255 and turns a 16-bit ramp white). Float ``F`` images
must lie in [0, 1] and are scaled by 255. Alpha is dropped (as torch-fidelity does), palette
transparency included. Everything else (1, L, P, CMYK, YCbCr, LAB, HSV, RGBX, 48-bit RGB) goes
through PIL's ``convert("RGB")``. An image over PIL's decompression-bomb limit
(``Image.MAX_IMAGE_PIXELS``) is refused before it is decoded. No torch here: baselines use it too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from trecs_eval.errors import InputError

SIXTEEN_BIT_MAX = 65535
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def check_unique_stems(files: Sequence[Path]) -> None:
    """Item ids are file stems: two files with one stem (``a.png``, ``a.jpg``) are an InputError
    naming both, raised before any feature is computed."""
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise InputError(f"{seen[path.stem]} and {path} share the item id {path.stem!r}; keep one",
                             field="images")
        seen[path.stem] = path


@contextmanager
def open_image(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """``Image.open`` whose every failure is one InputError naming the file: unreadable,
    truncated, or a decompression bomb (over ``Image.MAX_IMAGE_PIXELS``, PIL's own limit)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputError(f"refusing to decode a possible decompression bomb ({err})".replace("\n", " "),
                         path=str(path), field="image") from None
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise InputError(f"cannot read image ({err})", path=str(path), field="image") from None
    with image:
        try:
            yield image
        except (OSError, SyntaxError) as err:  # decoding happens lazily, inside the caller's block
            raise InputError(f"cannot decode image ({err})", path=str(path), field="image") from None


def rgb_array(image: Image.Image, path: str | os.PathLike[str] = "<image>") -> np.ndarray:
    """(H, W, 3) uint8 of an open image of any mode (see the module docstring for the scaling)."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        gray = _scaled_16_bit(np.asarray(image), mode, path)
    elif mode == "F":
        gray = _scaled_float(np.asarray(image), path)
    else:
        if mode in ALPHA_MODES or (mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")  # via RGBA: PIL warns when a palette's alpha is dropped directly
        try:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
        except ValueError as err:
            raise InputError(f"cannot convert mode {mode} to RGB ({err})", path=str(path),
                             field="image") from None
    return np.repeat(gray[:, :, None], 3, axis=2)


def _scaled_16_bit(values: np.ndarray, mode: str, path: str | os.PathLike[str]) -> np.ndarray:
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > SIXTEEN_BIT_MAX):
        raise InputError(f"mode {mode} values span [{values.min()}, {values.max()}]; only 8- and 16-bit "
                         f"images (0-{SIXTEEN_BIT_MAX}) are read", path=str(path), field="image")
    return ((values * 255 + SIXTEEN_BIT_MAX // 2) // SIXTEEN_BIT_MAX).astype(np.uint8)  # round(v / 257)


def _scaled_float(values: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
        raise InputError("a floating-point (mode F) image must hold values in [0, 1]; got "
                         f"[{np.nanmin(values):g}, {np.nanmax(values):g}]", path=str(path), field="image")
    return np.rint(values.astype(np.float64) * 255.0).astype(np.uint8)


def decode_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W, 3) uint8 of the image file at ``path``, any mode (:func:`rgb_array`)."""
    with open_image(path) as img:
        return rgb_array(img, path)

"""Helpers shared by the built-in baselines: parameter checking and image loading."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trecs_eval.errors import ConfigError, suggest
from trecs_eval.features.decode import decode_rgb


def read_params(
    generator: str,
    params: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    choices: Mapping[str, tuple[Any, ...]] | None = None,
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``defaults`` updated with ``params``; an unknown key, a value whose type differs from its
    default's (``None`` defaults take anything), a value outside ``choices`` or an absent
    ``required`` key is a ConfigError that names the generator and the key."""
    allowed = set(defaults) | set(required)
    for key, value in params.items():
        if key not in allowed:
            raise ConfigError(f"{generator}: unknown parameter {key!r}{suggest(key, allowed)}")
        default = defaults.get(key)
        if default is not None and not _same_kind(default, value):
            raise ConfigError(f"{generator}: parameter {key!r} must be {type(default).__name__}, "
                              f"got {value!r}")
        if choices and key in choices and value not in choices[key]:
            raise ConfigError(f"{generator}: parameter {key} = {value!r} is not allowed"
                              f"{suggest(str(value), [str(c) for c in choices[key]])}")
    missing = [key for key in required if key not in params]
    if missing:
        raise ConfigError(f"{generator}: required parameter(s) missing: {', '.join(missing)}")
    return {**defaults, **params}


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """Decode an image file to H×W×3 uint8 RGB (any mode converted), optionally resized to
    ``size``×``size`` with PIL bicubic. Unreadable files are an InputError naming the path."""
    rgb = Image.fromarray(decode_rgb(path))
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)


def find_image(folder: Path, stem: str, extensions: tuple[str, ...] = ("png", "jpg", "jpeg")) -> Path | None:
    """``folder/stem.ext`` for the first extension that exists, else None."""
    for ext in extensions:
        candidate = folder / f"{stem}.{ext}"
        if candidate.is_file():
            return candidate
    return None

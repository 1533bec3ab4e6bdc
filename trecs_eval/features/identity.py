"""Extractor identity: everything that decides what numbers a feature extractor produces.

A cache key or a saved statistics file is only valid for the exact extractor that made it:
the same weights (by sha256, never by name), layer(s), preprocessing, dtype and library
versions. ``ExtractorIdentity.key()`` is the sha256 of the canonical JSON of all of that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PREPROCESSING_MODES = ("tf1", "clean")
# Inception tensor layouts: nchw is torch-fidelity's forward (the default), nhwc a recorded opt-in
INCEPTION_LAYOUTS = ("nchw", "nhwc")
"""Named image preprocessing: ``tf1`` (uint8 into the network, TF1-exact bilinear resize, as
torch-fidelity) and ``clean`` (PIL bicubic to 299 in float, as clean-fid). Part of a metric's identity."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose code shapes the features ("absent" if missing)."""
    versions: dict[str, str] = {}
    for dist in ("torch", "torch-fidelity", "open_clip_torch"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


def sha256_file(path: str, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (weight files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()



def folder_sha256(folder: str | Path) -> str:
    """sha256 over the sorted (relative path, file sha256) pairs of every non-hidden file under
    ``folder`` (symlinks followed, as the HF cache uses them): the identity of a model folder
    (weights, config, tokenizer); a renamed folder hashes the same, a changed file does not."""
    root = Path(folder)
    outer = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts)):
        outer.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(str(path))}\n".encode())
    return outer.hexdigest()


def device_extra(device: object) -> dict[str, str]:
    """``{"device": "cuda"}`` for features computed on a GPU (its kernels give other low-order bits
    than the CPU's, so a cache must not serve one for the other); ``{}`` on the CPU, so CPU
    identities, and the caches keyed by them, stay as they were."""
    kind = str(device).partition(":")[0]
    return {} if kind == "cpu" else {"device": kind}


@dataclass(frozen=True)
class ExtractorIdentity:
    """Frozen description of a feature extractor; two equal identities give equal features.

    Example::

        ident = ExtractorIdentity(name="inception-v3-compat", weights_sha256="ab12...",
                                  layers=("2048", "logits_unbiased"), preprocessing="tf1")
        ident.key()  # 64 hex chars, stable across processes and machines
    """

    name: str
    weights_sha256: str
    layers: tuple[str, ...]
    preprocessing: str
    dtype: str = "float32"
    versions: dict[str, str] = field(default_factory=library_versions)
    uncalibrated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # dict fields are unhashable; the canonical key is the identity
        return hash(self.key())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (layers as a list), the form stored in results and stats files."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        return data

    def canonical_json(self) -> str:
        """Sorted-key, whitespace-free JSON: the same identity always gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """sha256 hex of :meth:`canonical_json`: the identity half of every cache key."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractorIdentity:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["layers"] = tuple(data.get("layers", ()))
        return cls(**data)

    def differences(self, other: ExtractorIdentity) -> list[str]:
        """Human-readable list of the fields that differ (for IdentityMismatchError messages)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine.get(k)!r} != {theirs.get(k)!r}"
                for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]

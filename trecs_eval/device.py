"""The one device resolver: every extractor, generator and run asks here, so ``cuda`` without a
GPU fails the same way everywhere (the CLIP embedder used to accept it and crash later)."""

from __future__ import annotations

from trecs_eval.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is there, else ``cpu``; ``cuda`` (or ``cuda:N``) without one,
    or an unknown name, is a ConfigError."""
    import torch  # lazy: the CLI starts without torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ConfigError(f"unknown device {device!r}; available: {', '.join(DEVICES)} (or cuda:N)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but no CUDA GPU is available",
                          hint="use --device cpu or --device auto")
    return device

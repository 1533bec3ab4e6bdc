"""The metric registry: every metric a run or ``trecs-eval metrics`` can compute, by name.

Built-in metrics are listed in :data:`BUILTIN_METRICS` as ``"module:ATTR"`` strings, one stage
module per feature space (:mod:`trecs_eval.stages`), so naming a metric imports only its own
stage. Third-party packages add metrics through the ``trecs_eval.metrics`` entry-point group::

    [project.entry-points."trecs_eval.metrics"]
    mean_red = "my_package.metrics:MEAN_RED"    # a trecs_eval.metrics.types.Metric

and the metric appears in runs, ``trecs-eval metrics`` and every report format, with nothing
changed here. Names and parameters are checked before any work (:func:`parse_metric_names`,
:func:`checked_params`): an unknown one fails with a suggestion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trecs_eval.errors import ConfigError, UnknownNameError, suggest
from trecs_eval.metrics.types import Metric
from trecs_eval.registry import Registry

METRICS: Registry[Metric] = Registry("metric", "trecs_eval.metrics")

BUILTIN_METRICS: dict[str, str] = {
    "fid": "trecs_eval.stages.inception:FID",
    "kid": "trecs_eval.stages.inception:KID",
    "is": "trecs_eval.stages.inception:IS",
    "fid_inf": "trecs_eval.stages.inception:FID_INF",
    "clip_score": "trecs_eval.stages.clip:CLIP_SCORE",
    "clip_s": "trecs_eval.stages.clip:CLIP_S",
    "r_precision": "trecs_eval.stages.clip:R_PRECISION",
    "trace_canvas_accuracy": "trecs_eval.stages.canvas:TRACE_CANVAS_ACCURACY",
    "canvas_pixel_accuracy": "trecs_eval.stages.canvas:CANVAS_PIXEL_ACCURACY",
    "canvas_miou": "trecs_eval.stages.canvas:CANVAS_MIOU",
    "fd_dinov2": "trecs_eval.stages.dinov2:FD_DINOV2",
    "cmmd": "trecs_eval.stages.cmmd:CMMD",
    "precision": "trecs_eval.stages.prdc:PRECISION",
    "recall": "trecs_eval.stages.prdc:RECALL",
    "density": "trecs_eval.stages.prdc:DENSITY",
    "coverage": "trecs_eval.stages.prdc:COVERAGE",
    "seg_trace_accuracy": "trecs_eval.stages.segmentation:SEG_TRACE_ACCURACY",
    "seg_pixel_accuracy": "trecs_eval.stages.segmentation:SEG_PIXEL_ACCURACY",
    "seg_miou": "trecs_eval.stages.segmentation:SEG_MIOU",
    "trace_hit_rate": "trecs_eval.stages.segmentation:TRACE_HIT_RATE",
    "trace_local_clip": "trecs_eval.stages.trace_local:TRACE_LOCAL_CLIP",
    "trace_local_clip_contrast": "trecs_eval.stages.trace_local:TRACE_LOCAL_CLIP_CONTRAST",
}


def register_builtins() -> None:
    """Register the built-in metrics (idempotent: the same string twice is not a conflict)."""
    for name, target in BUILTIN_METRICS.items():
        METRICS.register(name, target)


register_builtins()


def metric(name: str) -> Metric:
    """The registered metric ``name`` (UnknownNameError with a suggestion otherwise)."""
    found = METRICS.get(name)
    if not isinstance(found, Metric):
        raise ConfigError(f"metric {name!r} is registered as {type(found).__name__}, not a "
                          "trecs_eval.metrics.types.Metric")
    if found.name != name:
        raise ConfigError(f"metric registered as {name!r} declares the name {found.name!r}")
    return found


def parse_metric_names(names: str | Sequence[str]) -> list[str]:
    """``"fid,kid"`` or a list -> validated names (order kept, duplicates dropped)."""
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    items = [n for n in items if n]
    if not items:
        raise ConfigError(f"no metrics given; available: {', '.join(METRICS.names())}")
    for name in items:
        if name not in METRICS:
            raise UnknownNameError(f"unknown metric {name!r}{suggest(name, METRICS.names())}")
    return list(dict.fromkeys(items))


# Allowed values of the parameters built-in metrics share (a plug-in's parameter of the same name
# is held to them too): a negative resample count or zero IS splits is refused before any work
# instead of meaning "no interval" by accident or failing with a self-contradicting message.
PARAM_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_resamples": (lambda v: v >= 0, ">= 0 (0: no interval)"),
    "splits": (lambda v: v >= 1, ">= 1"),
    "n_subsets": (lambda v: v >= 1, ">= 1"),
    "nearest_k": (lambda v: v >= 1, ">= 1"),
    "n_negatives": (lambda v: v >= 1, ">= 1"),
    "n_points": (lambda v: v >= 3, ">= 3"),
    "alpha": (lambda v: 0 < v < 1, "in (0, 1)"),
    "min_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
}


def check_range(name: str, key: str, value: Any) -> None:
    """ConfigError when ``value`` lies outside the allowed range of parameter ``key``."""
    allowed = PARAM_RANGES.get(key)
    if allowed is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not allowed[0](value):  # NaN fails every comparison, so it is refused too
        raise ConfigError(f"metric {name}: parameter {key} = {value!r} is out of range; "
                          f"allowed: {allowed[1]}")


def checked_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of metric ``name`` with the declared defaults filled in.

    An undeclared key is refused with a suggestion; a value whose type differs from a non-None
    default's (``n_resamples = "100"``) is refused too, and so is a value outside
    :data:`PARAM_RANGES` (``splits = 0``). All happen before any work.
    """
    declared = metric(name).params
    for key, value in params.items():
        if key not in declared:
            raise ConfigError(f"metric {name}: unknown parameter {key!r}{suggest(key, declared)}")
        default = declared[key]
        if default is not None and not _same_kind(value, default):
            raise ConfigError(f"metric {name}: parameter {key} = {value!r} must be "
                              f"{type(default).__name__} (default {default!r})")
        check_range(name, key, value)
    return {**declared, **params}


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))

"""Picks the engine a run's ``[execution]`` names. Its own module because both engines import
:mod:`trecs_eval.execution.base`: choosing them there made an import cycle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trecs_eval.execution.base import Engine

if TYPE_CHECKING:
    from trecs_eval.config import ExecutionSpec


def make_engine(spec: ExecutionSpec, device: str = "auto") -> Engine:
    """The engine ``spec`` names (Ray is imported only for ``engine = "ray"``)."""
    if spec.engine == "ray":
        from trecs_eval.execution.ray_engine import RayEngine

        return RayEngine(spec, device)
    from trecs_eval.execution.local import LocalEngine

    return LocalEngine()

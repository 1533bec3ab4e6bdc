"""The local engine: this process does everything, exactly as without an engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trecs_eval.data.evalset import EvalItem
from trecs_eval.execution.base import GeneratorRecipe
from trecs_eval.generation.protocol import Generator
from trecs_eval.generation.runner import SystemOutput, generate_system

if TYPE_CHECKING:
    from trecs_eval.metrics.engine import FeatureExtractors


class LocalEngine:
    """Generation by :func:`~trecs_eval.generation.runner.generate_system`, features in-process."""

    name = "local"

    def generate_system(self, run_dir: Path, recipe: GeneratorRecipe, generator: Generator,
                        items: Sequence[EvalItem], *, seed: int, batch_size: int,
                        progress: bool) -> SystemOutput:
        return generate_system(run_dir, recipe.system, generator, items, seed=seed, batch_size=batch_size,
                               progress=progress)

    def bind_extractors(self, extractors: FeatureExtractors) -> FeatureExtractors:
        return extractors

    def info(self) -> dict[str, Any]:
        return {"engine": self.name, "nodes": 1, "cpus": len(os.sched_getaffinity(0)), "workers": 1,
                "startup_seconds": 0.0}

    def close(self) -> None:
        pass

"""The engine interface: "generate this system's items" and "extract features with these
extractors", plus what the results record about where the run ran."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from trecs_eval.data.evalset import EvalItem
from trecs_eval.generation.protocol import Generator, GeneratorContext, GeneratorFactory
from trecs_eval.generation.runner import SystemOutput

if TYPE_CHECKING:
    from trecs_eval.metrics.engine import FeatureExtractors


@dataclass(frozen=True)
class GeneratorRecipe:
    """How to build a system's generator again in another process: the registry's factory (a class
    or function importable there), its parameters, the run's context and the requested device
    (resolved where the generator runs: a GPU worker may sit behind a CPU-only driver)."""

    system: str
    factory: GeneratorFactory
    params: Mapping[str, Any]
    context: GeneratorContext
    device: str = "auto"


class Engine(Protocol):
    """Runs the two heavy stages of a run; everything else stays in the driver."""

    name: str

    def generate_system(self, run_dir: Path, recipe: GeneratorRecipe, generator: Generator,
                        items: Sequence[EvalItem], *, seed: int, batch_size: int,
                        progress: bool) -> SystemOutput:
        """Every item of ``items`` without an image on disk, written as the local runner writes it.
        ``generator`` is the driver's instance (the local engine uses it)."""
        ...

    def bind_extractors(self, extractors: FeatureExtractors) -> FeatureExtractors:
        """Extractors whose forward passes run on this engine (same cache, same features)."""
        ...

    def info(self) -> dict[str, Any]:
        """``engine``, cluster size (``nodes``, ``cpus``, ``gpus``), ``workers``, ``startup_seconds``."""
        ...

    def close(self) -> None:
        """Release workers (and a cluster this engine started)."""
        ...


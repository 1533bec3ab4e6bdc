"""The Ray engine: generation and feature extraction on a Ray cluster, results as the local engine's.

See :mod:`trecs_eval.execution.ray_generation` (sharded generation, worker failures) and
:mod:`trecs_eval.execution.ray_features` (actor pool, one cache writer). Workers per stage:
``execution.workers``, or by default as many as the cluster has CPUs (``cpus_per_worker`` each)
or, for GPU workers, GPUs (``gpus_per_worker`` each). GPU workers are used when the run's device
is ``cuda``, or ``auto`` on a cluster that has GPUs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trecs_eval.config import ExecutionSpec
from trecs_eval.data.evalset import EvalItem
from trecs_eval.execution.base import GeneratorRecipe
from trecs_eval.execution.ray_cluster import RayCluster
from trecs_eval.generation.protocol import Generator
from trecs_eval.generation.runner import SystemOutput
from trecs_eval.metrics.engine import FeatureExtractors

log = logging.getLogger(__name__)


class RayEngine:
    """Connects on construction; :meth:`close` releases the actors and a cluster it started."""

    name = "ray"

    def __init__(self, spec: ExecutionSpec, device: str = "auto") -> None:
        self.spec, self.device = spec, device
        self.cluster = RayCluster.connect(spec.address)
        self.resources = self.cluster.resources()
        self._pools: list[Any] = []

    def gpus_per_worker(self) -> float:
        """``spec.gpus_per_worker``, else 1 for a cuda run or an auto run on a GPU cluster, else 0."""
        if self.spec.gpus_per_worker is not None:
            return float(self.spec.gpus_per_worker)
        wants_gpu = self.device.startswith("cuda") or (self.device == "auto" and self.resources["gpus"] > 0)
        return 1.0 if wants_gpu else 0.0

    def workers(self) -> int:
        """``spec.workers``, else as many as the cluster's CPUs (or GPUs) allow; at least 1."""
        if self.spec.workers:
            return self.spec.workers
        gpus = self.gpus_per_worker()
        if gpus > 0:
            return max(1, int(self.resources["gpus"] / gpus))
        return max(1, int(self.resources["cpus"] / self.spec.cpus_per_worker))

    def actor_options(self) -> dict[str, float]:
        return {"num_cpus": self.spec.cpus_per_worker, "num_gpus": self.gpus_per_worker()}

    def generate_system(self, run_dir: Path, recipe: GeneratorRecipe, generator: Generator,
                        items: Sequence[EvalItem], *, seed: int, batch_size: int,
                        progress: bool) -> SystemOutput:
        from trecs_eval.execution.ray_generation import generate_system_on_ray

        return generate_system_on_ray(self.cluster.ray, run_dir, recipe, items, seed=seed,
                                      batch_size=batch_size, progress=progress, workers=self.workers(),
                                      shard_batches=self.spec.shard_batches,
                                      actor_options=self.actor_options())

    def bind_extractors(self, extractors: FeatureExtractors) -> FeatureExtractors:
        from trecs_eval.execution.ray_features import FeaturePool, ray_extractors

        pool = FeaturePool(self.cluster.ray, extractors.settings, self.workers(), self.actor_options())
        self._pools.append(pool)
        return ray_extractors(extractors, pool, self.spec.shard_batches)

    def info(self) -> dict[str, Any]:
        return {"engine": self.name, "address": self.spec.address or "local", **self.resources,
                "workers": self.workers(), "gpus_per_worker": self.gpus_per_worker(),
                "startup_seconds": round(self.cluster.startup_seconds, 3)}

    def close(self) -> None:
        for pool in self._pools:
            pool.close()
        self._pools = []
        self.cluster.close()

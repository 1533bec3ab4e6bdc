"""Helpers for the Ray engine tests: cluster size, and a generator whose worker pid a test can kill."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from trecs_eval.data.evalset import EvalItem
from trecs_eval.generation.protocol import Generation

RAY_TEST_CPUS = 2
RAY_TEST_OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's minimum is 75 MiB


class PidSlowNoiseGenerator:
    """The noise baseline at ``seconds`` per item; records its process id as a file in ``pid_dir`` so a
    test can ``kill -9`` the Ray worker that runs it."""

    name = "pid-slow-noise"
    version = "1"

    def __init__(self, params: dict, context: object) -> None:
        from baselines.noise import NoiseGenerator

        self.pid_dir = Path(params["pid_dir"])
        self.seconds = float(params.get("seconds", 0.2))
        self.inner = NoiseGenerator({}, context)  # type: ignore[arg-type]
        self.capabilities = self.inner.capabilities

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        (self.pid_dir / str(os.getpid())).touch()
        time.sleep(self.seconds * len(items))
        return self.inner.generate(items, seed)

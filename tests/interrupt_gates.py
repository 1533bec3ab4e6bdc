"""Gates that hold a child ``trecs-eval run`` inside one phase until a test signals it.

``install_gate(phase, marker)`` wraps one function of that phase (in the child process, before the
CLI starts, as a plug-in would): the wrapper lets the first ``after`` calls through, then writes
``marker`` and waits. The test waits for the marker and sends its signal: the signal lands in that
phase, every time, however loaded the machine is. A gate that is never signalled gives up after
``GATE_TIMEOUT_S`` with an error (exit 1), so a broken test cannot hang.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GATE_TIMEOUT_S = 600.0
# phase -> (module, attribute the run looks up at call time, calls let through before the gate)
PHASES: dict[str, tuple[str, str, int]] = {
    "generate": ("tests.harness_fixtures", "GatedNoiseGenerator.hold", 1),  # after one batch is written
    "features": ("trecs_eval.features.inception", "inception_forward", 1),  # after one batch is cached
    "metrics": ("trecs_eval.metrics.engine", "image_metrics", 0),
    "report": ("trecs_eval.harness", "write_report", 0),
}


def wait_at_gate(marker: Path) -> None:
    marker.write_text("reached", encoding="utf-8")
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.02)  # the test's signal arrives here
    raise RuntimeError(f"gate {marker} was never signalled")


def gated(function: Callable[..., Any], marker: Path, after: int) -> Callable[..., Any]:
    calls = 0

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == after + 1:
            wait_at_gate(marker)
        return function(*args, **kwargs)

    return wrapper


def install_gate(phase: str, marker: Path, after: int | None = None) -> None:
    """Hold the run at ``phase`` (one of :data:`PHASES`), after ``after`` calls (default: the
    phase's own); ``"none"`` installs nothing."""
    if phase == "none":
        return
    module_name, attribute, default_after = PHASES[phase]
    after = default_after if after is None else after
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, name, gated(getattr(owner, name), marker, after))

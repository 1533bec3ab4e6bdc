"""``trecs-eval data prepare BENCHMARK --root DIR``: from downloads to a ready benchmark.

Layout it reads (written by ``trecs-eval data download``) and writes, under ``ROOT``::

    localized_narratives/*.jsonl, localized_narratives/coco_train/*-of-00004.jsonl   (read)
    trecs_sequence_labels/{val_coco,val_oi,train_coco}.*.txt                         (read)
    coco/val2017/, coco/train2017/, coco/annotations/{instances,stuff}_train2017.json (read)
    coco_stuff/val2017/*.png, openimages/validation/*.jpg, trecs_released/**.png     (read)
    trecs_train/bank/bank.json        mask bank: COCO-Stuff train, things + stuff, RLE
    trecs_train/caption_bank.jsonl    LN-COCO train narratives without traces (for `retrieval`)
    trecs_train/tagger.pt             tagger trained on the released train words/tags
    ln_coco/evalset.json, missing.txt evaluation-set summary and the missing-items report
    ln_coco/trecs_released/           the released images of the evaluation items (hard links)
    ln_openimages/...                 the same for LN-OpenImages (bank and tagger: COCO's, as the paper)
    prepared.json                     which steps finished, with a fingerprint of their inputs

Each step is skipped when ``prepared.json`` records it with the same input fingerprint (size and
mtime of every input file, plus options such as the tagger kind) and its outputs exist; a step's
outputs are written atomically, so a killed prepare redoes only the step it was in.
``configs/ln_coco_val.toml`` and ``configs/ln_openimages_val.toml`` reference these paths
relative to the working directory with the default ``--root data``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trecs_eval.atomic import atomic_write
from trecs_eval.data import prepare_steps as steps
from trecs_eval.errors import InputError, UnknownNameError, suggest

log = logging.getLogger(__name__)

STATE_NAME = "prepared.json"
BENCHMARKS = ("ln-coco", "ln-openimages")
DEFAULT_TAGGER = "neural"


@dataclass(frozen=True)
class PrepareOptions:
    """What the user chose: the tagger kind and its seed; ``force`` redoes every step."""

    tagger: str = DEFAULT_TAGGER
    seed: int = 0
    force: bool = False
    progress: bool = True


@dataclass(frozen=True)
class Step:
    """One idempotent step: a key in ``prepared.json``, its inputs, outputs and the work."""

    key: str
    title: str
    inputs: tuple[Path, ...]
    outputs: tuple[Path, ...]
    options: tuple[tuple[str, Any], ...]
    run: Callable[[], dict[str, Any]]
    hint: str


def _fingerprint(step: Step) -> dict[str, Any]:
    """(size, mtime_ns) of every input file (folders: of their entry count) plus the options."""
    files = {}
    for path in step.inputs:
        if path.is_dir():
            files[str(path)] = ["dir", sum(1 for _ in os.scandir(path))]
        else:
            stat = path.stat()
            files[str(path)] = [stat.st_size, stat.st_mtime_ns]
    return {"inputs": files, "options": [list(o) for o in step.options]}


def read_state(root: Path) -> dict[str, Any]:
    path = root / STATE_NAME
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg})", str(path), err.lineno,
                         hint="delete it: every step is then redone") from None
    return state if isinstance(state, dict) else {}


def _write_state(root: Path, state: dict[str, Any]) -> None:
    with atomic_write(root / STATE_NAME, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(state, indent=2, sort_keys=True) + "\n")


def plan(benchmark: str, root: Path, options: PrepareOptions) -> list[Step]:
    """The steps of ``benchmark`` in order (the shared train steps come last: the cheap checks
    of the evaluation set fail first when a download is missing)."""
    if benchmark not in BENCHMARKS:
        raise UnknownNameError(f"unknown benchmark {benchmark!r}{suggest(benchmark, BENCHMARKS)}")
    layout = steps.Layout(root)
    build = steps.ln_coco_steps if benchmark == "ln-coco" else steps.ln_openimages_steps
    own = build(layout, options.progress)
    shared = steps.train_steps(layout, options.tagger, options.seed, options.progress)
    return [Step(*s) for s in (*own, *shared)]


def _missing_inputs(step: Step) -> list[Path]:
    return [p for p in step.inputs if not p.exists()]


def prepare(benchmark: str, root: str | os.PathLike[str], options: PrepareOptions = PrepareOptions(),
            *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every step of ``benchmark`` that is not done yet; returns ``prepared.json``'s content."""
    root = Path(root)
    todo = plan(benchmark, root, options)
    absent = [(s, p) for s in todo for p in _missing_inputs(s)]
    if absent:
        step, path = absent[0]
        raise InputError(f"{len(absent)} input(s) of `data prepare {benchmark}` are missing; first, for "
                         f"step {step.key!r}: {path}", hint=step.hint)
    state = read_state(root)
    for number, step in enumerate(todo, 1):
        label = f"[{number}/{len(todo)}] {step.title}"
        fingerprint = _fingerprint(step)
        record = state.get(step.key)
        if (not options.force and record and record.get("fingerprint") == fingerprint
                and all(p.exists() for p in step.outputs)):
            echo(f"{label}: done already")
            continue
        echo(f"{label} ...")
        started = time.perf_counter()
        summary = step.run()
        seconds = round(time.perf_counter() - started, 1)
        state[step.key] = {"fingerprint": fingerprint, "summary": summary, "seconds": seconds,
                           "outputs": [str(p) for p in step.outputs],
                           "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
        _write_state(root, state)
        echo(f"{label}: {_describe(summary)} ({seconds} s)")
    return state


def _describe(summary: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in summary.items())


def benchmark_names() -> Sequence[str]:
    return BENCHMARKS

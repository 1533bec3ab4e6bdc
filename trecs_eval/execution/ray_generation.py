"""Generation on Ray: a system's pending items, sharded over actors that each build the generator once.

Each actor builds the system's generator from its :class:`GeneratorRecipe` in its constructor
(a model-based generator loads its model once per actor; GPU actors request ``num_gpus``), then
generates whole shards with the local runner's own loop
(:func:`~trecs_eval.generation.runner.generate_items`): the same per-item files, written
atomically into the run directory (which must be on a filesystem every node sees), the same
per-item seeds, the same batch composition (shards are whole multiples of ``batch_size`` taken in
the local runner's order).

Failures: an actor whose process dies (``kill -9``, OOM, a lost node) is restarted by Ray
(``max_restarts``) and its shard retried (``max_task_retries``); the retry first drops the
items whose image the dead attempt finished (the image is written last, so an existing image
means a finished item), so nothing finished is generated again. An exception raised by the
generator is not retried: it stops the run like the local runner's.

Provenance: concurrent appends to one JSONL file are not atomic on NFS, so each actor appends
to its own part file (``provenance/.parts/{system}/{pid}-{uuid}.jsonl``, fsynced per line like
the local runner's); the driver merges the parts into ``provenance/{system}.jsonl`` when the
system is done, or when the next run finds parts a killed run left.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from trecs_eval.atomic import atomic_write
from trecs_eval.confine import check_inside, read_plain
from trecs_eval.data.evalset import EvalItem
from trecs_eval.device import resolve_device
from trecs_eval.errors import TrecsEvalError
from trecs_eval.execution.base import GeneratorRecipe
from trecs_eval.execution.ray_cluster import unwrapped
from trecs_eval.generation.runner import (
    PROVENANCE_DIR,
    SystemOutput,
    collect_output,
    generate_items,
    pending_items,
    prepare_output_dirs,
    provenance_path,
)

log = logging.getLogger(__name__)

MAX_RESTARTS = 3  # a worker killed more often than this fails the run (a bug, not bad luck)
PARTS_DIR = ".parts"


def provenance_parts_dir(run_dir: Path, system: str) -> Path:
    return run_dir / PROVENANCE_DIR / PARTS_DIR / system


class GenerationWorker:
    """One Ray actor's state: the generator, built once, and this process's provenance part file."""

    def __init__(self, recipe: GeneratorRecipe, run_dir: str) -> None:
        context = replace(recipe.context, device=resolve_device(recipe.device))
        self.system, self.run_dir = recipe.system, Path(run_dir)
        self.generator = recipe.factory(recipe.params, context)
        parts = provenance_parts_dir(self.run_dir, self.system)
        check_inside(self.run_dir, parts / "_")
        parts.mkdir(parents=True, exist_ok=True)
        self.part = parts / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

    def pid(self) -> int:
        return os.getpid()

    def generate_shard(self, items: Sequence[EvalItem], seed: int, batch_size: int) -> int:
        """Generate the shard's items that have no image yet (a retried shard skips finished ones)."""
        todo = pending_items(self.run_dir, self.system, items)
        generate_items(self.run_dir, self.system, self.generator, todo, seed=seed, batch_size=batch_size,
                       provenance=self.part)
        return len(todo)


def merge_provenance_parts(run_dir: Path, system: str) -> int:
    """Append the workers' provenance lines to ``provenance/{system}.jsonl`` (atomic rewrite, then
    the parts are removed). A line already there is not added again (a merge interrupted between
    the rewrite and the removal); a torn last line of a killed worker is dropped. Returns the
    number of lines added."""
    folder = provenance_parts_dir(run_dir, system)
    parts = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not parts:
        return 0
    check_inside(run_dir, parts[0])  # parts are read and deleted: never through a link out
    target = provenance_path(run_dir, system)
    lines = (read_plain(target, run_dir) or "").splitlines()
    seen = set(lines)
    added = [line for part in parts for line in (read_plain(part, run_dir) or "").splitlines()
             if line not in seen and _is_json(line)]
    with atomic_write(target, "w", encoding="utf-8", fsync=True) as fh:
        fh.write("".join(f"{line}\n" for line in [*lines, *dict.fromkeys(added)]))
    for part in parts:
        part.unlink()
    return len(added)


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def shard(todo: Sequence[EvalItem], batch_size: int, shard_batches: int) -> list[list[EvalItem]]:
    """Contiguous shards of ``shard_batches`` whole batches (the local runner's batches)."""
    size = batch_size * shard_batches
    return [list(todo[start:start + size]) for start in range(0, len(todo), size)]


def generate_system_on_ray(ray: ModuleType, run_dir: Path, recipe: GeneratorRecipe,
                           items: Sequence[EvalItem], *, seed: int, batch_size: int, progress: bool,
                           workers: int, shard_batches: int, actor_options: dict[str, float]
                           ) -> SystemOutput:
    """:func:`~trecs_eval.generation.runner.generate_system` with the shards on Ray actors."""
    if batch_size < 1:
        raise TrecsEvalError(f"batch_size must be at least 1, got {batch_size}")
    system = recipe.system
    prepare_output_dirs(run_dir, system)  # no worker runs yet: stale temp files are a dead run's
    merge_provenance_parts(run_dir, system)
    todo = pending_items(run_dir, system, items)
    reused = len(items) - len(todo)
    shards = shard(todo, batch_size, shard_batches)
    log.info("%s: %d of %d images on disk, generating %d in %d shards on %d Ray workers", system, reused,
             len(items), len(todo), len(shards), min(workers, len(shards)))
    started = time.perf_counter()
    if shards:
        _run_shards(ray, run_dir, recipe, shards, seed, batch_size, workers, actor_options,
                    tqdm(total=len(items), initial=reused, desc=f"generate {system}", unit="img",
                         disable=not progress, leave=False))
    return collect_output(run_dir, system, items, len(todo), reused, time.perf_counter() - started)


def _run_shards(ray: ModuleType, run_dir: Path, recipe: GeneratorRecipe, shards: list[list[EvalItem]],
                seed: int, batch_size: int, workers: int, actor_options: dict[str, float], bar: tqdm) -> None:
    from ray.util import ActorPool

    actor = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
                       **actor_options)(GenerationWorker)
    actors = [actor.remote(recipe, str(run_dir)) for _ in range(max(1, min(workers, len(shards))))]
    try:
        pool = ActorPool(actors)
        tasks = unwrapped(ray, pool.map(lambda a, s: a.generate_shard.remote(s, seed, batch_size), shards))
        for done, part in zip(tasks, shards, strict=True):
            bar.update(len(part))
            log.debug("%s: shard of %d done (%d generated)", recipe.system, len(part), done)
    finally:
        bar.close()
        for a in actors:
            ray.kill(a)
        merge_provenance_parts(run_dir, recipe.system)
        prepare_output_dirs(run_dir, recipe.system)  # temp files of workers killed mid-write

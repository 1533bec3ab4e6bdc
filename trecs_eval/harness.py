"""``run_one(config)``: one evaluation run, reading like the data flow it implements:

    narratives ──► generation ──► images (+ canvases) ──► features ──► metrics ──► results ──► report

Each stage is one named call and logs what it does; every stage's output is on disk before the
next starts, so a run stopped anywhere (Ctrl-C, ``kill -9``, an exception) resumes by running
the same config again: images on disk are not generated again, features come from the cache.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import baselines  # noqa: F401  (registers the built-in systems)
from trecs_eval import interrupt
from trecs_eval.config import RunConfig, config_hash, config_to_dict
from trecs_eval.data.evalset import EvalItem, EvalSet, build_evalset, load_toyworld
from trecs_eval.data.localized_narratives import write_narratives_jsonl
from trecs_eval.device import resolve_device
from trecs_eval.errors import ConfigError, InputError, TrecsEvalError
from trecs_eval.execution import Engine, GeneratorRecipe, make_engine
from trecs_eval.execution.local import LocalEngine
from trecs_eval.generation.protocol import GENERATORS, Generator, GeneratorContext
from trecs_eval.generation.runner import ItemCheck, SystemOutput, check_numeric_identity, read_provenance
from trecs_eval.measure import Measurements, check_metric_names, measure, sample_rows
from trecs_eval.preflight import preflight
from trecs_eval.results import RunResults, SystemInfo, write_results
from trecs_eval.rundir import (
    NARRATIVES_FILE,
    REPORT_DIR,
    claim_run_dir,
    record_output,
    release_run_dir,
    write_samples,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run left: its directory, results, and report files by format."""

    run_dir: Path
    results: RunResults
    report_paths: dict[str, Path]


@dataclass(frozen=True)
class BuiltSystem:
    """A configured system: its generator instance and which items it cannot produce."""

    name: str
    generator_name: str
    params: dict[str, Any]
    generator: Generator
    check: ItemCheck


def run_one(config: RunConfig, *, force: bool = False, progress: bool = True,
            resume_command: str = "trecs-eval run CONFIG", source: str = "<config>") -> RunOutcome:
    """Run (or resume) the evaluation described by ``config`` (read from ``source``); see the module
    docstring. ``resume_command`` is what a failure message tells the user to run again. The run
    directory's lock is held until the run ends."""
    try:
        return _run_claimed(config, force, progress, resume_command, source)
    finally:
        release_run_dir(config.out_dir)


def _run_claimed(config: RunConfig, force: bool, progress: bool, resume_command: str,
                 source: str) -> RunOutcome:
    check_names(config)  # a typo in a system or metric name fails before any work
    preflight(config, source)  # the whole config and its inputs, before the folder is claimed
    engine = make_engine(config.execution, config.device)  # Ray missing or unreachable: before the claim too
    try:
        return _run_stages(config, engine, force, progress, resume_command)
    finally:
        engine.close()


def _run_stages(config: RunConfig, engine: Engine, force: bool, progress: bool, resume_hint: str
                ) -> RunOutcome:
    timings: dict[str, float] = {}
    with _stage("claim run directory", timings, resume_hint):
        run_dir = claim_run_dir(config, force)
    with _stage("load dataset", timings, resume_hint):
        evalset = load_dataset(config, run_dir, progress)
    with _stage("build systems", timings, resume_hint):
        built = build_systems(config, run_dir, evalset.items)
        items, warnings = select_items(config, evalset.items, built)
    with _stage("generate", timings, resume_hint):
        outputs = generate_all(config, run_dir, built, items, progress, engine)
    with _stage("features and metrics", timings, resume_hint):
        measured = measure(config, run_dir, items, outputs, [b.generator for b in built], progress,
                           engine=engine)
    with _stage("write results", timings, resume_hint):
        results = write_run(config, run_dir, evalset, items, built, outputs, measured, warnings, timings,
                            execution=engine.info())
    with _stage("report", timings, resume_hint):
        report_paths = write_report(run_dir, config.report_formats)
    return RunOutcome(run_dir, results, report_paths)


@contextmanager
def _stage(name: str, timings: dict[str, float], resume_hint: str) -> Iterator[None]:
    log.info("[%s] ...", name)
    started = time.perf_counter()
    try:
        yield
        interrupt.check()  # a Ctrl-C swallowed during the stage (in a __del__, say) stops the run here
    except TrecsEvalError:
        raise  # the CLI's one line says what to fix (finished work stays on disk); no second message
    except (Exception, KeyboardInterrupt):
        log.error("run stopped during stage %r; finished work is on disk: re-run `%s` to resume",
                  name, resume_hint)
        raise
    timings[name] = round(time.perf_counter() - started, 3)
    log.info("[%s] done in %.1f s", name, timings[name])


def check_names(config: RunConfig) -> None:
    """Every system's generator and every metric exists (UnknownNameError with a suggestion)."""
    if not config.systems:
        raise ConfigError("the config lists no systems", hint="add a [[systems]] table")
    for spec in config.systems:
        if spec.generator not in GENERATORS:
            GENERATORS.get(spec.generator)  # raises, naming the closest match
    check_metric_names(config)


# ---------------------------------------------------------------- dataset


def load_dataset(config: RunConfig, run_dir: Path, progress: bool = True) -> EvalSet:
    """The evaluation set: a toyworld folder (built if absent) or LN JSONL + images, then
    the optional subset file and limit."""
    spec = config.dataset
    if spec.kind == "toyworld":
        path = Path(spec.path) if spec.path is not None else run_dir / "data" / "toyworld"
        if not (path / "narratives.jsonl").is_file():
            build_toyworld(path, n=spec.n, seed=spec.seed, image_size=spec.image_size, progress=progress)
            record_output(path)  # built by this run inside its folder: a changed dataset may delete it
        evalset = load_toyworld(path)
    else:
        assert spec.narratives is not None and spec.images is not None  # checked by the config
        evalset = build_evalset(spec.narratives, spec.images, naming=spec.naming,
                                sequence_labels=spec.sequence_labels, segmentation_root=spec.segmentation)
    items = list(evalset.items)
    if spec.subset is not None:
        items = _subset(items, spec.subset)
    if spec.limit is not None:
        items = items[:spec.limit]
    if not items:
        raise InputError("the evaluation set is empty", path=str(spec.path or spec.narratives))
    if spec.train_dir is not None and not Path(spec.train_dir).is_dir():
        raise ConfigError(f"dataset.train_dir {spec.train_dir} does not exist",
                          hint="build one with write_toyworld or point it at a toyworld-layout folder")
    log.info("dataset %s: %d narratives", evalset.name, len(items))
    return replace(evalset, items=tuple(items))


def build_toyworld(path: Path, *, n: int, seed: int, image_size: int, progress: bool = True) -> Path:
    """Write a toyworld split into ``path`` (``write_toyworld`` renames a complete folder into
    place, so a killed build leaves nothing that would pass for a dataset)."""
    from trecs_eval.data.toyworld import write_toyworld

    log.info("building toyworld at %s (n=%d, seed=%d, %d px)", path, n, seed, image_size)
    write_toyworld(path, n=n, seed=seed, image_size=image_size, shifted=False, progress=progress)
    return path


def _subset(items: list[EvalItem], subset_file: Path) -> list[EvalItem]:
    if not Path(subset_file).is_file():
        raise InputError("subset file not found", path=str(subset_file), field="dataset.subset")
    wanted = [line.strip() for line in Path(subset_file).read_text(encoding="utf-8").splitlines()
              if line.strip()]
    by_id = {it.item_id: it for it in items}
    absent = [w for w in wanted if w not in by_id]
    if absent:
        log.warning("subset %s: %d of %d ids are not in the dataset (e.g. %s)", subset_file, len(absent),
                    len(wanted), ", ".join(absent[:3]))
    return [by_id[w] for w in dict.fromkeys(wanted) if w in by_id]


# ---------------------------------------------------------------- systems and generation


def generator_context(config: RunConfig, run_dir: Path) -> GeneratorContext:
    """What every generator of this run may use (device resolved, work dir inside the run)."""
    train = Path(config.dataset.train_dir) if config.dataset.train_dir is not None else None
    return GeneratorContext(device=resolve_device(config.device), work_dir=run_dir / "work",
                            train_dir=train, image_size=config.image_size)


def build_systems(config: RunConfig, run_dir: Path, items: Sequence[EvalItem]) -> list[BuiltSystem]:
    """Instantiate every configured system and ask it which items it cannot produce."""
    context = generator_context(config, run_dir)
    built = []
    for spec in config.systems:
        factory = GENERATORS.get(spec.generator)
        log.info("system %s: %s %s", spec.name, spec.generator, spec.params or "")
        generator = factory(spec.params, context)
        check_items = getattr(generator, "check_items", None)
        check = check_items(items) if check_items is not None else ItemCheck()
        for note in check.notes:
            log.warning("system %s: %s", spec.name, note)
        built.append(BuiltSystem(spec.name, spec.generator, dict(spec.params), generator, check))
    return built


def select_items(config: RunConfig, items: Sequence[EvalItem],
                 built: Sequence[BuiltSystem]) -> tuple[list[EvalItem], list[str]]:
    """Apply ``on_missing``: ``stop`` raises when a system lacks items; ``intersect`` keeps the
    items every system has (all systems are scored on the same items) and says so."""
    missing = {b.name: set(b.check.missing) for b in built if b.check.missing}
    if not missing:
        return list(items), []
    summary = "; ".join(f"{name}: {len(ids)} missing" for name, ids in missing.items())
    if config.on_missing == "stop":
        notes = " | ".join(n for b in built for n in b.check.notes)
        raise InputError(f"some systems cannot produce every item ({summary}); {notes}",
                         hint="fix the inputs, or set on_missing = \"intersect\" to evaluate the items "
                              "all systems have")
    lacking = set().union(*missing.values())
    kept = [it for it in items if it.item_id not in lacking]
    if not kept:
        raise InputError(f"no item is produced by every system ({summary})")
    warning = (f"on_missing = intersect: evaluating {len(kept)} of {len(items)} items, the ones every "
               f"system has ({summary})")
    log.warning(warning)
    return kept, [warning]


def generate_all(config: RunConfig, run_dir: Path, built: Sequence[BuiltSystem], items: Sequence[EvalItem],
                 progress: bool, engine: Engine | None = None) -> list[SystemOutput]:
    """Images (and canvases) of every system; only the ones not on disk are generated."""
    engine = engine or LocalEngine()
    context = generator_context(config, run_dir)
    recipes = [GeneratorRecipe(b.name, GENERATORS.get(b.generator_name), b.params, context, config.device)
               for b in built]
    for b in built:  # before any generation: a resume on another device must not mix pixels
        check_numeric_identity(run_dir, b.name, b.generator)
    return [engine.generate_system(run_dir, recipe, b.generator, items, seed=config.seed,
                                   batch_size=config.batch_size, progress=progress)
            for recipe, b in zip(recipes, built, strict=True)]


# ---------------------------------------------------------------- results and report


def write_run(config: RunConfig, run_dir: Path, evalset: EvalSet, items: Sequence[EvalItem],
              built: Sequence[BuiltSystem], outputs: Sequence[SystemOutput], measured: Measurements,
              warnings: Sequence[str], timings: dict[str, float],
              execution: dict[str, Any] | None = None) -> RunResults:
    """results.json, samples.parquet and narratives.jsonl (``execution``: the engine's info)."""
    write_narratives_jsonl(run_dir / NARRATIVES_FILE, [it.narrative for it in items])
    write_samples(run_dir, sample_rows(run_dir, items, outputs, measured.metrics, measured.extra_columns))
    dataset = {"name": evalset.name, "kind": config.dataset.kind, "n_items": len(items),
               "n_available": len(evalset.items), "on_missing": config.on_missing,
               "missing_ground_truth": evalset.missing.counts(), "reference": asdict(config.reference)}
    results = RunResults(
        run_id=f"{config.name}-{config_hash(config)[:8]}",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        config_hash=config_hash(config),
        config=config_to_dict(config),
        dataset=_json_ready(dataset),
        systems=tuple(_system_info(b, o, items, run_dir) for b, o in zip(built, outputs, strict=True)),
        metrics=tuple(measured.metrics),
        extractors=measured.extractors,
        versions=measured.versions,
        git_commit=_git_commit(),
        seed=config.seed,
        timings=dict(timings),
        warnings=tuple(warnings) + tuple(measured.warnings),
        uncalibrated=measured.uncalibrated,
        metric_info=measured.infos,
        execution=dict(execution or LocalEngine().info()),
    )
    write_results(run_dir, results)
    return results


def _system_info(b: BuiltSystem, out: SystemOutput, items: Sequence[EvalItem], run_dir: Path) -> SystemInfo:
    caps = b.generator.capabilities
    version = str(getattr(b.generator, "version", ""))
    return SystemInfo(name=b.name, generator=b.generator_name, version=version, params=b.params,
                      capabilities=asdict(caps), n_items=len(out.images),
                      missing_items=tuple(sorted(b.check.missing)), notes=tuple(b.check.notes),
                      generation=_generation_info(b, items, run_dir))


def _generation_info(b: BuiltSystem, items: Sequence[EvalItem], run_dir: Path) -> dict[str, Any]:
    """The generator's ``describe(items)`` (if it has one) and ``images_per_s`` = items generated /
    their generation seconds, over every run that generated them (the provenance log)."""
    describe = getattr(b.generator, "describe", None)
    info = dict(describe(items)) if describe is not None else {}
    records = read_provenance(run_dir, b.name)
    seconds = sum(float(r.get("seconds", 0.0)) for r in records)
    info["images_per_s"] = round(len(records) / seconds, 4) if seconds > 0 else None
    return info


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _git_commit() -> str | None:
    """The commit of the working tree this package runs from, if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def write_report(run_dir: Path, formats: Sequence[str]) -> dict[str, Path]:
    """The report files (``RUN/report/``) in ``formats``."""
    from reports import build_report

    return build_report(run_dir, formats=tuple(formats), out_dir=run_dir / REPORT_DIR)

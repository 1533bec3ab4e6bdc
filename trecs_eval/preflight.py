"""Checks a run does before any work: the whole config and the inputs it names.

Everything here reads; nothing writes. A problem is a :class:`ConfigError` (or :class:`InputError`)
naming the config file and the key, raised before the run directory is claimed, so a typo never
costs a generation pass and never binds a folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from trecs_eval.config import RunConfig
from trecs_eval.errors import ConfigError, suggest


def preflight(config: RunConfig, source: str = "<config>") -> None:
    """Validate ``config`` (read from ``source``) as a whole: where it writes, every metric's
    parameters, and that every input path it names exists with the right kind."""
    from trecs_eval.rundir import check_out_dir

    check_out_dir(config.out_dir, source)
    check_metric_params(config, source)
    check_input_paths(config, source)


def check_metric_params(config: RunConfig, source: str) -> None:
    """Every ``[[metrics]] params`` key is one the metric declares (ConfigError with a suggestion);
    the metric registry holds each metric's parameters with their defaults."""
    from trecs_eval.measure import plan_metrics
    from trecs_eval.metrics.registry import METRICS, metric

    for i, spec in enumerate(config.metrics):
        if spec.name not in METRICS:
            continue  # an unknown metric name is reported by the name check, with its own suggestion
        names = list(metric(spec.name).params)
        for key in spec.params:
            if key not in names:
                raise ConfigError(f"{source}: metrics[{i}] ({spec.name}): unknown parameter {key!r}"
                                  f"{suggest(key, names)}")
        try:  # value types against the declared defaults; a space a parameter picks must exist
            plan_metrics([spec])
        except ConfigError as err:
            raise ConfigError(f"{source}: metrics[{i}] ({spec.name}): {err.message}") from None


def _expect_path(path: Path | None, key: str, source: str, kind: str) -> None:
    if path is None:
        return
    path = Path(path)
    ok = path.is_dir() if kind == "folder" else path.is_file()
    if not ok:
        state = "does not exist" if not path.exists() else f"is not a {kind}"
        raise ConfigError(f"{source}: {key} = {str(path)!r} {state}")


def check_input_paths(config: RunConfig, source: str) -> None:
    """Each input the config names exists (a toyworld ``dataset.path`` may be absent: it is built)."""
    dataset, reference, extractors = config.dataset, config.reference, config.extractors
    checks: Mapping[str, tuple[Path | None, str]] = {
        "dataset.narratives": (dataset.narratives, "file"),
        "dataset.images": (dataset.images, "folder"),
        "dataset.segmentation": (dataset.segmentation, "folder"),
        "dataset.subset": (dataset.subset, "file"),
        "dataset.train_dir": (dataset.train_dir, "folder"),
        "reference.images": (reference.images if reference.kind == "images" else None, "folder"),
        "reference.stats": (reference.stats if reference.kind == "stats" else None, "file"),
        "extractors.inception_weights": (extractors.inception_weights, "file"),
    }
    for key, (path, kind) in checks.items():
        _expect_path(path, key, source, kind)
    if reference.kind == "stats" and reference.stats is not None:
        from trecs_eval.metrics.fid import load_statistics

        load_statistics(reference.stats)  # a malformed or pickled file is refused before any work
    if reference.kind == "images" and reference.images is not None:
        from trecs_eval.features.images import list_images

        list_images(reference.images)  # no images, or two files with one stem: said now, not after features
    if dataset.kind == "toyworld" and dataset.path is not None:
        path = Path(dataset.path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{source}: dataset.path = {str(path)!r} is not a folder")

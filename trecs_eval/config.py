"""Run configuration: frozen dataclasses, TOML in and out, and the canonical hash of a run.

A run config names a dataset, the systems to evaluate, the metrics to compute, where the FID/KID
reference statistics come from, and the feature extractors. It flows one way: TOML (or CLI)
-> :class:`RunConfig` -> objects. Relative paths are kept as written and resolved against the
current working directory when used. Example (``configs/demo.toml`` holds a complete one)::

    name = "demo"
    out_dir = "runs/demo"
    seed = 0

    [dataset]
    kind = "toyworld"
    path = "runs/demo/data/eval"

    [[systems]]
    name = "noise"
    generator = "noise"

    [[metrics]]
    name = "fid"

Unknown keys, wrong types and unknown enum values raise :class:`ConfigError` naming the file and
the key, with a "did you mean". :func:`config_hash` is the sha256 of the canonical JSON of
everything that determines the results (``out_dir``, ``device``, ``report_formats`` and
``execution`` are excluded: moving a run directory, resuming it on another device or engine, or
asking for another report format does not change what it means).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from trecs_eval.errors import ConfigError, suggest
from trecs_eval.features.identity import INCEPTION_LAYOUTS, PREPROCESSING_MODES

DATASET_KINDS = ("toyworld", "localized_narratives")
IMAGE_NAMINGS = ("coco", "openimages", "flat")
REFERENCE_KINDS = ("eval", "images", "stats")
TEXT_POLICIES = ("utterances", "truncate")
DEVICES = ("auto", "cpu", "cuda")
ON_MISSING = ("stop", "intersect")
ENGINES = ("local", "ray")
REPORT_FORMATS = ("md", "tex", "csv", "html")
DEFAULT_REPORT_FORMATS = ("md", "html")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# where / on what / shown how: not what. The engine is not hashed either: both engines give the same
# features and results (tests/integration/test_ray_engine.py), so a run started locally may be
# resumed on a cluster and vice versa; results.json records which engine ran (``execution``).
_NOT_HASHED = ("out_dir", "device", "report_formats", "execution")
_CHOICES: dict[str, tuple[str, ...]] = {
    "DatasetSpec.kind": DATASET_KINDS,
    "DatasetSpec.naming": IMAGE_NAMINGS,
    "ReferenceSpec.kind": REFERENCE_KINDS,
    "ExtractorSpec.preprocessing": PREPROCESSING_MODES,
    "ExtractorSpec.inception_layout": INCEPTION_LAYOUTS,
    "ExtractorSpec.text_policy": TEXT_POLICIES,
    "RunConfig.device": DEVICES,
    "RunConfig.on_missing": ON_MISSING,
    "ExecutionSpec.engine": ENGINES,
}


@dataclass(frozen=True)
class DatasetSpec:
    """The evaluation narratives and their ground truth.

    ``kind = "toyworld"``: ``path`` is a toyworld folder, built by ``write_toyworld`` with ``n``,
    ``seed`` and ``image_size`` when it does not exist yet (default: ``OUT/data/toyworld``).
    ``kind = "localized_narratives"``: ``narratives`` is an LN JSONL file, ``images`` the image
    root (file names by ``naming``: coco ``{image_id:012d}.jpg``, openimages ``{image_id}.jpg``,
    flat ``{item_id}.png``), ``sequence_labels`` an optional TReCS ``*.ids/words/tags`` prefix (gold tags),
    ``segmentation`` optional gold label maps.
    ``subset`` is an optional file of item ids (one per line); ``limit`` keeps the first N items.
    ``train_dir`` is a toyworld-layout folder used as caption/mask bank and tagger training data.
    """

    kind: str = "toyworld"
    path: Path | None = None
    n: int = 300
    seed: int = 0
    image_size: int = 256
    narratives: Path | None = None
    images: Path | None = None
    naming: str = "coco"
    sequence_labels: Path | None = None
    segmentation: Path | None = None
    subset: Path | None = None
    limit: int | None = None
    train_dir: Path | None = None


@dataclass(frozen=True)
class SystemSpec:
    """One system under evaluation: its name in the run (a directory name), the registry name
    of its generator, and the generator's parameters."""

    name: str
    generator: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.generator:
            object.__setattr__(self, "generator", self.name)


@dataclass(frozen=True)
class MetricSpec:
    """One metric and its parameters (e.g. ``{subsets = 100}`` for KID)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceSpec:
    """Where FID/KID reference statistics come from: the evaluation set's own reference images
    (``eval``), a folder of real images (``images``, e.g. a disjoint split), or a saved
    statistics file (``stats``)."""

    kind: str = "eval"
    images: Path | None = None
    stats: Path | None = None


@dataclass(frozen=True)
class ExtractorSpec:
    """Feature extractors. ``None`` weights mean the standard published weights (cached, the
    ``weights`` extra, or downloaded); ``uncalibrated = true`` uses seeded random weights for every
    extractor not given a weights file (an ``inception_weights`` file wins) and stamps its results.
    ``dinov2_*`` set the ``dinov2`` space (FD-DINOv2; ``vitl14`` defines it, ``vits14``/``vitb14``
    are cheaper stand-ins, recorded as such), ``cmmd_clip_*`` the ``clip_cmmd`` space (CMMD),
    ``segmenter_model`` the local Mask2Former directory of the ``mask2former`` segmenter."""

    inception_weights: Path | None = None
    preprocessing: str = "tf1"
    inception_layout: str = "nchw"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    text_policy: str = "utterances"
    batch_size: int = 32
    uncalibrated: bool = False
    dinov2_arch: str = "vitl14"
    dinov2_weights: Path | None = None
    cmmd_clip_model: str = "ViT-L-14-336"
    cmmd_clip_pretrained: str = "openai"
    segmenter_model: Path | None = None


@dataclass(frozen=True)
class ExecutionSpec:
    """Where the work runs (see :mod:`trecs_eval.execution`). ``engine = "ray"``: ``address`` None
    starts a local Ray cluster, ``"auto"`` joins the running one, ``"HOST:PORT"`` or
    ``"ray://HOST:10001"`` a remote head. ``workers`` actors per stage (0: one per CPU, or per
    GPU when workers use GPUs); ``gpus_per_worker`` (None: 1 when the run's device is cuda or is
    auto on a cluster with GPUs, else 0); ``shard_batches`` batches per Ray task."""

    engine: str = "local"
    address: str | None = None
    workers: int = 0
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    shard_batches: int = 4


@dataclass(frozen=True)
class RunConfig:
    """A whole run. ``on_missing`` says what to do when a system lacks some items: ``stop`` (error)
    or ``intersect`` (evaluate every system on the items all systems have; the report says so)."""

    name: str = "run"
    out_dir: Path = Path("runs/run")
    seed: int = 0
    device: str = "auto"
    batch_size: int = 16
    image_size: int = 256
    on_missing: str = "stop"
    report_formats: tuple[str, ...] = DEFAULT_REPORT_FORMATS
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    reference: ReferenceSpec = field(default_factory=ReferenceSpec)
    extractors: ExtractorSpec = field(default_factory=ExtractorSpec)
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)
    systems: tuple[SystemSpec, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()

    def system(self, name: str) -> SystemSpec:
        for spec in self.systems:
            if spec.name == name:
                return spec
        raise ConfigError(f"no system {name!r} in this run{suggest(name, [s.name for s in self.systems])}")


# ---------------------------------------------------------------- reading


def load_config(path: Path | str) -> RunConfig:
    """Read a TOML run config; every problem is a ConfigError naming ``path`` and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file", hint="pass a .toml file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); a config is UTF-8 TOML") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    return config_from_dict(data, source=str(path))


def config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> RunConfig:
    """Build and validate a RunConfig from plain data (as TOML parses it)."""
    config = _build(RunConfig, data, "", source)
    _validate(config, source)
    return config


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where or 'config'} must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"{source}: unknown key {key_path!r}{suggest(key, names)}")
        kwargs[key] = _convert(hints[key], value, key_path, source)
        choices = _CHOICES.get(f"{cls.__name__}.{key}")
        if choices and kwargs[key] not in choices:
            raise ConfigError(f"{source}: {key_path} = {value!r} is not allowed"
                              f"{suggest(str(value), choices)}")
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is absent
        raise ConfigError(f"{source}: {where or 'config'}: {err}") from None


def _convert(hint: Any, value: Any, key_path: str, source: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key_path, source)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key_path, source)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key_path} must be a list, got {type(value).__name__}")
        return tuple(_convert(args[0], v, f"{key_path}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key_path} must be a table, got {type(value).__name__}")
        return dict(value)
    if hint is Path:
        _expect(value, str, key_path, source)
        return Path(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    _expect(value, hint, key_path, source)
    return value


def _expect(value: Any, kind: type, key_path: str, source: str) -> None:
    # bool is an int subclass: `seed = true` must not pass as 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {key_path} must be {kind.__name__}, got {value!r}")


def _validate(config: RunConfig, source: str) -> None:
    names = [s.name for s in config.systems]
    for i, spec in enumerate(config.systems):
        if not _SAFE_NAME.match(spec.name):
            raise ConfigError(f"{source}: systems[{i}].name = {spec.name!r}: use letters, digits, "
                              "'.', '_', '-' (it names a directory)")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: system names must be unique; repeated: {', '.join(duplicates)}")
    metric_names = [m.name for m in config.metrics]
    if len(set(metric_names)) != len(metric_names):
        raise ConfigError(f"{source}: a metric is listed twice: {', '.join(metric_names)}")
    for fmt in config.report_formats:
        if fmt not in REPORT_FORMATS:
            raise ConfigError(f"{source}: report_formats: {fmt!r} is not allowed"
                              f"{suggest(fmt, REPORT_FORMATS)}")
    for key in ("seed", "batch_size", "image_size"):
        if getattr(config, key) < (0 if key == "seed" else 1):
            raise ConfigError(f"{source}: {key} = {getattr(config, key)} is out of range")
    _validate_sources(config, source)
    _validate_execution(config.execution, source)


def _validate_sources(config: RunConfig, source: str) -> None:
    dataset, reference = config.dataset, config.reference
    if dataset.kind == "localized_narratives" and (dataset.narratives is None or dataset.images is None):
        raise ConfigError(f"{source}: dataset.narratives and dataset.images are required for "
                          "kind = 'localized_narratives'")
    if dataset.limit is not None and dataset.limit < 1:
        raise ConfigError(f"{source}: dataset.limit = {dataset.limit} must be at least 1")
    from trecs_eval.data.toyworld import MAX_ITEMS_PER_SEED, MIN_IMAGE_SIZE

    ranges = {"dataset.n": (dataset.n, 1, MAX_ITEMS_PER_SEED), "dataset.seed": (dataset.seed, 0, None),
              "dataset.image_size": (dataset.image_size, MIN_IMAGE_SIZE, None),
              "extractors.batch_size": (config.extractors.batch_size, 1, None)}
    for key, (value, low, high) in ranges.items():
        if value < low or (high is not None and value > high):
            allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"{source}: {key} = {value} is out of range; it must be {allowed}")
    if reference.kind == "images" and reference.images is None:
        raise ConfigError(f"{source}: reference.images is required for reference.kind = 'images'")
    if reference.kind == "stats" and reference.stats is None:
        raise ConfigError(f"{source}: reference.stats is required for reference.kind = 'stats'")


def _validate_execution(spec: ExecutionSpec, source: str) -> None:
    if spec.workers < 0 or spec.shard_batches < 1 or spec.cpus_per_worker <= 0:
        raise ConfigError(f"{source}: execution: workers must be >= 0, shard_batches >= 1 and "
                          "cpus_per_worker > 0")
    if spec.gpus_per_worker is not None and spec.gpus_per_worker < 0:
        raise ConfigError(f"{source}: execution.gpus_per_worker = {spec.gpus_per_worker} must be >= 0")


# ---------------------------------------------------------------- writing and hashing


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain TOML/JSON-ready data: paths as strings, tuples as lists, ``None`` values left out
    (TOML has no null; a missing key reads back as the default ``None``)."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def dump_config(config: RunConfig) -> str:
    """TOML text that :func:`load_config` reads back to an equal config."""
    return tomli_w.dumps(config_to_dict(config))


def save_config(config: RunConfig, path: Path) -> None:
    from trecs_eval.atomic import write_text

    write_text(path, dump_config(config))


def canonical_json(config: RunConfig) -> str:
    """Sorted-key compact JSON of everything that determines the results."""
    data = {k: v for k, v in config_to_dict(config).items() if k not in _NOT_HASHED}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(config: RunConfig) -> str:
    """sha256 (hex) of :func:`canonical_json`: same meaning, same hash, whatever the TOML layout."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def config_differences(old: RunConfig, new: RunConfig) -> list[str]:
    """Human-readable differences between two configs (hashed fields only), for resume errors."""
    a = json.loads(canonical_json(old))
    b = json.loads(canonical_json(new))
    diffs: list[str] = []
    for key in sorted(set(a) | set(b)):
        if key in ("systems", "metrics"):
            diffs += _list_differences(key, a.get(key, []), b.get(key, []))
        elif a.get(key) != b.get(key):
            diffs.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return diffs


def _list_differences(key: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    by_name_old = {d["name"]: d for d in old}
    by_name_new = {d["name"]: d for d in new}
    diffs = [f"{key}: added {n!r}" for n in by_name_new if n not in by_name_old]
    diffs += [f"{key}: removed {n!r}" for n in by_name_old if n not in by_name_new]
    diffs += [f"{key}: {n!r} changed" for n in by_name_new
              if n in by_name_old and by_name_new[n] != by_name_old[n]]
    return diffs

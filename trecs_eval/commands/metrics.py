"""``trecs-eval metrics --generated DIR --reference DIR|STATS.npz --metrics fid,kid,is``.

Any registered metric (``trecs-eval metrics --list`` shows them), through the same code path as a
run (:func:`trecs_eval.measure.evaluate_set`): the same parameters, defaults and numbers.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from trecs_eval.commands._extractor_args import (
    add_extractor_arguments,
    settings_from_args,
    write_json_atomic,
)
from trecs_eval.errors import ConfigError, InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metrics", help="FID/KID/IS, CLIP and any registered metric of a folder of generated images",
        description="Metrics of --generated against --reference (a folder, or statistics from "
                    "`trecs-eval stats make`); text metrics pair each image with the narrative whose "
                    "item id (IMAGEID_ANNOTATOR) is the file's stem.")
    parser.add_argument("--generated", type=Path, metavar="DIR")
    parser.add_argument("--reference", type=Path, metavar="DIR|STATS.npz")
    parser.add_argument("--narratives", type=Path, metavar="FILE.jsonl")
    parser.add_argument("--metrics", default="fid,kid,is", help="comma-separated; default fid,kid,is")
    parser.add_argument("--param", action="append", default=[], metavar="METRIC.KEY=VALUE",
                        help="a metric parameter, e.g. kid.n_subsets=50 or precision.features=clip "
                             "(VALUE as TOML; repeatable)")
    parser.add_argument("--list", action="store_true", help="list the registered metrics and exit")
    parser.add_argument("--out", type=Path, metavar="results.json")
    parser.add_argument("--seed", type=int, default=0, help="KID subsets, IS splits and bootstrap")
    parser.add_argument("--n-bootstrap", type=int, default=None,
                        help="bootstrap resamples of every metric (default: each metric's own, e.g. 100 "
                             "for FID/KID/IS, 1000 for CLIP metrics; 0: no CI)")
    add_extractor_arguments(parser, clip=True)
    parser.set_defaults(handler=metrics_command)


def parse_params(entries: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """``["kid.n_subsets=50"]`` -> {"kid": {"n_subsets": 50}}; values parse as TOML."""
    params: dict[str, dict[str, Any]] = {name: {} for name in names}
    for entry in entries:
        key, sep, text = entry.partition("=")
        name, dot, param = key.strip().partition(".")
        if not sep or not dot or not param:
            raise ConfigError(f"--param {entry!r}: expected METRIC.KEY=VALUE, e.g. kid.n_subsets=50")
        if name not in params:
            raise ConfigError(f"--param {entry!r}: metric {name!r} is not in --metrics")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()  # a bare word: a string (precision.features=clip)
        params[name][param] = value
    return params


def _narratives_for(paths: list[Path], narratives_file: Path) -> list[Any]:
    from trecs_eval.data.localized_narratives import read_narratives

    by_id = {n.item_id: n for n in read_narratives(narratives_file).narratives}
    missing = [p.name for p in paths if p.stem not in by_id]
    if missing:
        raise InputError(f"{len(missing)} generated images have no narrative with their stem as item id"
                         f" (first: {missing[0]})", path=str(narratives_file), field="item_id")
    return [by_id[p.stem] for p in paths]


def _plan(args: argparse.Namespace) -> list[Any]:
    from trecs_eval.config import MetricSpec
    from trecs_eval.measure import plan_metrics
    from trecs_eval.metrics.registry import parse_metric_names

    names = parse_metric_names(args.metrics)
    params = parse_params(args.param, names)
    plan = plan_metrics([MetricSpec(n, params[n]) for n in names])
    if args.n_bootstrap is not None:
        plan = [type(p)(p.metric, {**p.params, "n_resamples": args.n_bootstrap})
                if "n_resamples" in p.params else p for p in plan]
    for planned in plan:
        needs = planned.metric.needs
        if "canvas" in needs:
            raise ConfigError(f"{planned.metric.name} scores label canvases: only `trecs-eval run` has them")
        if "items" in needs:
            raise ConfigError(f"{planned.metric.name} needs the evaluation items' gold tags and maps: "
                              "use `trecs-eval run` on a dataset that has them")
        if "text" in needs and args.narratives is None:
            raise InputError(f"{planned.metric.name} needs --narratives FILE.jsonl", field="narratives")
        if "reference" in needs and args.reference is None:
            raise InputError(f"{planned.metric.name} needs --reference DIR|STATS.npz", field="reference")
    return plan


def _reference(args: argparse.Namespace, extractors: Any) -> Any:
    from trecs_eval.features.images import list_images
    from trecs_eval.measure import ReferenceFeatures
    from trecs_eval.metrics.engine import ReferenceStatistics

    if args.reference is None:
        return ReferenceFeatures(extractors)
    if args.reference.is_file():
        return ReferenceFeatures(extractors, statistics=ReferenceStatistics.load(str(args.reference)),
                                 source=str(args.reference))
    paths = list_images(args.reference)
    return ReferenceFeatures(extractors, paths, [p.stem for p in paths], source=str(args.reference))


def list_metrics() -> int:
    """Print every registered metric: name, direction, feature spaces, parameters."""
    from trecs_eval.metrics.registry import METRICS, metric

    for name in METRICS.names():
        m = metric(name)
        arrow = "higher is better" if m.info.higher_is_better else "lower is better"
        spaces = ",".join(m.info.features) or "-"
        params = ", ".join(f"{k}={v!r}" for k, v in m.params.items())
        print(f"{name:24s} {m.info.label:22s} {arrow:17s} features: {spaces:12s} params: {params}")
    return 0


def metrics_command(args: argparse.Namespace) -> int:
    from trecs_eval.features.images import inspect_images, list_images
    from trecs_eval.features.registry import FeatureExtractors
    from trecs_eval.measure import ImageSet, TextEmbeddings, evaluate_set

    if args.list:
        return list_metrics()
    if args.generated is None:
        raise ConfigError("--generated DIR is required (or --list)")
    plan = _plan(args)
    paths = list_images(args.generated)
    inspect_images(paths)  # headers only: an unreadable file or a bomb is refused before a model is built
    extractors = FeatureExtractors(settings_from_args(args))
    needs_text = any("text" in p.metric.needs for p in plan)
    narratives = _narratives_for(paths, args.narratives) if needs_text else []
    images = ImageSet(str(args.generated), tuple(p.stem for p in paths), tuple(paths), tuple(narratives))
    found = evaluate_set(plan, extractors, images, _reference(args, extractors),
                         TextEmbeddings(extractors, narratives), args.seed)
    for m in found.results:
        ci = "" if m.ci_low != m.ci_low else f"  95% CI [{m.ci_low:.6g}, {m.ci_high:.6g}]"
        stamp = "  UNCALIBRATED" if m.status == "uncalibrated" else ""
        shown = "unavailable" if m.status == "unavailable" else f"{m.value:.6g}{ci}"
        print(f"{m.name:12s} {shown}  n={m.n}{stamp}")
        for warning in m.warnings:
            print(f"  warning: {warning}")
    print(extractors.cache.stats, file=sys.stderr)
    if args.out is not None:
        write_json_atomic(args.out, {
            "generated": str(args.generated), "reference": str(args.reference),
            "extractors": extractors.identities(), "cache": vars(extractors.cache.stats),
            "metric_info": {p.metric.name: p.info.to_dict() for p in plan},
            "metrics": [m.to_dict(include_per_sample=True) for m in found.results]})
    return 0

"""``trecs-eval metrics --generated DIR --reference DIR|STATS.npz --metrics fid,kid,is``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trecs_eval.commands._extractor_args import (
    add_extractor_arguments,
    settings_from_args,
    write_json_atomic,
)
from trecs_eval.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metrics", help="FID/KID/IS (and CLIP metrics) of a folder of generated images",
        description="Image metrics of --generated against --reference (a folder, or statistics "
                    "from `trecs-eval stats make`); CLIP metrics pair each image with the narrative "
                    "whose item id (IMAGEID_ANNOTATOR) is the file's stem.")
    parser.add_argument("--generated", required=True, type=Path, metavar="DIR")
    parser.add_argument("--reference", type=Path, metavar="DIR|STATS.npz")
    parser.add_argument("--narratives", type=Path, metavar="FILE.jsonl")
    parser.add_argument("--metrics", default="fid,kid,is", help="comma-separated; default fid,kid,is")
    parser.add_argument("--out", type=Path, metavar="results.json")
    parser.add_argument("--seed", type=int, default=0, help="KID subsets, IS splits and bootstrap")
    parser.add_argument("--n-bootstrap", type=int, default=None,
                        help="bootstrap resamples (default 100 for FID/KID/IS, 1000 for CLIP metrics;"
                             " 0: no CI)")
    add_extractor_arguments(parser, clip=True)
    parser.set_defaults(handler=metrics_command)


def _narratives_for(paths: list[Path], narratives_file: Path) -> list[Any]:
    from trecs_eval.data.localized_narratives import read_narratives

    by_id = {n.item_id: n for n in read_narratives(narratives_file).narratives}
    missing = [p.name for p in paths if p.stem not in by_id]
    if missing:
        raise InputError(f"{len(missing)} generated images have no narrative with their stem as item id"
                         f" (first: {missing[0]})", path=str(narratives_file), field="item_id")
    return [by_id[p.stem] for p in paths]


def metrics_command(args: argparse.Namespace) -> int:
    from trecs_eval.features.images import inspect_images, list_images
    from trecs_eval.metrics import engine

    paths = list_images(args.generated)
    inspect_images(paths)  # headers only: an unreadable file or a bomb is refused before a model is built
    names = engine.parse_metric_names(args.metrics)
    image_names = [n for n in names if n in engine.IMAGE_METRICS]
    text_names = [n for n in names if n in engine.TEXT_METRICS]
    if text_names and args.narratives is None:
        raise InputError(f"{', '.join(text_names)} need --narratives FILE.jsonl", field="narratives")
    extractors = engine.FeatureExtractors(settings_from_args(args))
    results = []
    if image_names:
        results += _image_results(args, extractors, paths, image_names)
    if text_names:
        narratives = _narratives_for(paths, args.narratives)
        n_boot = 1000 if args.n_bootstrap is None else args.n_bootstrap
        results += engine.text_metrics(extractors, paths, narratives, text_names, seed=args.seed,
                                       n_bootstrap=n_boot)
    for m in results:
        ci = "" if m.ci_low != m.ci_low else f"  95% CI [{m.ci_low:.6g}, {m.ci_high:.6g}]"
        stamp = "  UNCALIBRATED" if m.status == "uncalibrated" else ""
        print(f"{m.name:12s} {m.value:.6g}{ci}  n={m.n}{stamp}")
        for warning in m.warnings:
            print(f"  warning: {warning}")
    print(extractors.cache.stats, file=sys.stderr)
    if args.out is not None:
        write_json_atomic(args.out, {
            "generated": str(args.generated), "reference": str(args.reference),
            "extractors": extractors.identities(), "cache": vars(extractors.cache.stats),
            "metrics": [m.to_dict(include_per_sample=True) for m in results]})
    return 0


def _image_results(args: argparse.Namespace, extractors: Any, paths: list[Path],
                   names: list[str]) -> list[Any]:
    from trecs_eval.features.images import list_images
    from trecs_eval.metrics import engine

    reference: Any = None
    if any(n in ("fid", "kid", "fid_inf") for n in names):
        if args.reference is None:
            raise InputError("fid/kid/fid_inf need --reference DIR|STATS.npz", field="reference")
        if args.reference.is_file():
            reference = engine.ReferenceStatistics.load(str(args.reference))
        else:
            reference = extractors.inception(list_images(args.reference))
    generated = extractors.inception(paths)
    n_boot = engine.DEFAULT_IMAGE_BOOTSTRAP if args.n_bootstrap is None else args.n_bootstrap
    return engine.image_metrics(generated, reference, names, seed=args.seed, n_bootstrap=n_boot,
                                system=str(args.generated))

"""``trecs-eval stats make --images DIR --out ref.npz``: FID reference statistics of a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trecs_eval.commands._extractor_args import add_extractor_arguments, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stats", help="reference statistics for FID")
    actions = parser.add_subparsers(dest="stats_action", metavar="ACTION", required=True)
    make = actions.add_parser(
        "make", help="save mean, covariance, n and the extractor identity of a folder's images",
        description="Inception pool3 features of every image in DIR (cached), then float64 mean and "
                    "covariance into an .npz with the extractor identity; FID against it refuses "
                    "features from another extractor.")
    make.add_argument("--images", required=True, type=Path, metavar="DIR")
    make.add_argument("--out", required=True, type=Path, metavar="REF.npz")
    add_extractor_arguments(make)
    make.set_defaults(handler=make_command)


def make_command(args: argparse.Namespace) -> int:
    from trecs_eval.features.images import list_images
    from trecs_eval.metrics.engine import FeatureExtractors
    from trecs_eval.metrics.fid import features_to_statistics, save_statistics

    settings = settings_from_args(args)
    extractors = FeatureExtractors(settings)
    features = extractors.inception(list_images(args.images))
    stats = features_to_statistics(features.pool)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_statistics(args.out, stats, features.identity)
    print(f"{args.out}: {stats.n} images, preprocessing {settings.preprocessing}; "
          f"{extractors.cache.stats}", file=sys.stderr)
    if features.identity.uncalibrated:
        print("UNCALIBRATED: random Inception weights; these statistics are for testing only",
              file=sys.stderr)
    return 0

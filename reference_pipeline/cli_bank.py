"""``trecs-eval pipeline build-bank``: a mask bank from COCO-format annotations and an image folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``build-bank`` subcommand."""
    parser = subparsers.add_parser(
        "build-bank", help="build a TReCS mask bank (label bags + RLE masks) from COCO-format annotations"
    )
    parser.add_argument("--annotations", type=Path, required=True, nargs="+",
                        help="COCO-format annotation JSON(s), merged by image id (COCO-Stuff stuff + things)")
    parser.add_argument("--images", type=Path, required=True, help="folder holding the annotated images")
    parser.add_argument("--out", type=Path, required=True, help="output folder (bank.json is written there)")
    parser.set_defaults(handler=run_build_bank)


def run_build_bank(args: argparse.Namespace) -> int:
    from reference_pipeline.bank import INDEX_NAME, build_bank

    bank = build_bank(args.annotations, args.images, args.out, progress=not getattr(args, "quiet", False))
    n_labels = len({m.label for m in bank.masks})
    print(f"mask bank: {len(bank)} images, {len(bank.masks)} masks, {n_labels} labels "
          f"-> {args.out / INDEX_NAME}")
    return 0

"""Command-line flags shared by ``trecs-eval stats`` and ``trecs-eval metrics`` (not a command)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trecs_eval.atomic import atomic_write
from trecs_eval.features.identity import INCEPTION_LAYOUTS, PREPROCESSING_MODES

if TYPE_CHECKING:
    from trecs_eval.features.registry import ExtractorSettings


def add_extractor_arguments(parser: argparse.ArgumentParser, clip: bool = False) -> None:
    """Weights, preprocessing, device and loader flags (plus the CLIP ones when ``clip``)."""
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--inception-weights", metavar="PATH",
                         help="local Inception weights file (torch-fidelity format); default: "
                              "download torch-fidelity's release into the torch hub cache")
    weights.add_argument("--uncalibrated-weights", action="store_true",
                         help="seeded random weights (no download); results are stamped UNCALIBRATED")
    parser.add_argument("--preprocessing", choices=PREPROCESSING_MODES, default="tf1",
                        help="tf1: TF1 bilinear resize as the FID literature (default); "
                             "clean: PIL bicubic as clean-fid")
    parser.add_argument("--inception-layout", choices=INCEPTION_LAYOUTS, default="nchw",
                        help="nchw: torch-fidelity's forward (default); nhwc: 1.4x faster on CPU, FID "
                             "within ~1e-6, recorded in the results")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=1, help="image decode processes")
    parser.add_argument("--weights-seed", type=int, default=0,
                        help="seed of the random weights with --uncalibrated-weights")
    if clip:
        parser.add_argument("--clip-model", default="ViT-B-32")
        parser.add_argument("--clip-pretrained", default="openai", metavar="TAG|PATH")
        parser.add_argument("--text-policy", choices=("utterances", "truncate"), default="utterances",
                            help="long narratives: average of <=77-token utterance chunks "
                                 "(default) or CLIP's truncation")
    if clip:  # the further spaces of `trecs-eval metrics` (a run reads them from [extractors])
        parser.add_argument("--dinov2-arch", choices=("vitl14", "vitb14", "vits14"), default="vitl14",
                            help="DINOv2 backbone (vitl14 defines fd_dinov2; smaller ones are stand-ins)")
        parser.add_argument("--dinov2-weights", metavar="PATH|RELEASE",
                            help="DINOv2 weights file (default: the official release in the hub cache)")
        parser.add_argument("--cmmd-clip-model", default="ViT-L-14-336", help="CLIP model of cmmd")
        parser.add_argument("--cmmd-clip-pretrained", default="openai", metavar="TAG|PATH")
        parser.add_argument("--segmenter-model", metavar="DIR",
                            help="local Mask2Former (COCO panoptic) directory for the mask2former segmenter")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars")


def settings_from_args(args: argparse.Namespace) -> ExtractorSettings:
    """The frozen settings the flags describe (CLI -> config, one direction)."""
    from trecs_eval.features.registry import ExtractorSettings  # lazy: keeps `--help` light

    extra: dict[str, Any] = {}
    if hasattr(args, "clip_model"):
        extra = {"clip_model": args.clip_model, "clip_pretrained": args.clip_pretrained,
                 "text_policy": args.text_policy, "dinov2_arch": args.dinov2_arch,
                 "dinov2_weights": args.dinov2_weights, "cmmd_clip_model": args.cmmd_clip_model,
                 "cmmd_clip_pretrained": args.cmmd_clip_pretrained, "segmenter_model": args.segmenter_model}
    return ExtractorSettings(
        device=args.device, batch_size=args.batch_size, num_workers=args.num_workers,
        inception_weights=args.inception_weights, preprocessing=args.preprocessing,
        inception_layout=args.inception_layout, uncalibrated=args.uncalibrated_weights,
        seed=args.weights_seed,
        progress=not getattr(args, "quiet", False), **extra)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and rename: a reader never sees half a file."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")

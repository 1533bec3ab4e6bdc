"""``trecs-eval pipeline convert-spade`` / ``convert-ccfpse``: released generator checkpoints ->
the project's synthesizer checkpoints (:mod:`reference_pipeline.synthesize.convert`)."""

from __future__ import annotations

import argparse
from pathlib import Path

RELEASES = {
    "convert-spade": "NVlabs/SPADE COCO-Stuff generator (latest_net_G.pth) -> a `spade` synthesizer "
                     "checkpoint",
    "convert-ccfpse": "xh-liu/CC-FPSE COCO-Stuff generator (e.g. 100_net_G.pth) -> a `ccfpse` synthesizer "
                      "checkpoint",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``convert-spade`` and ``convert-ccfpse`` subcommands."""
    for name, help_text in RELEASES.items():
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("checkpoint", type=Path, help="the released generator state_dict (.pth)")
        parser.add_argument("--out", type=Path, required=True,
                            help="converted checkpoint to write (must not exist)")
        parser.add_argument("--crop-size", type=int, default=None,
                            help="generation size (default: from the checkpoint, else 256 as NVlabs' COCO)")
        parser.set_defaults(handler=run_convert, convert_kind=name)


def run_convert(args: argparse.Namespace) -> int:
    from reference_pipeline.synthesize import ccfpse, spade
    from reference_pipeline.synthesize.convert import ccfpse_from_release, spade_from_nvlabs, write_converted

    if args.convert_kind == "convert-spade":
        model = spade_from_nvlabs(args.checkpoint, args.crop_size)
        out = write_converted(model, args.out, spade.save_checkpoint)
        use = f'synthesizer = "spade", spade_checkpoint = "{out}"'
    else:
        model = ccfpse_from_release(args.checkpoint, args.crop_size)
        out = write_converted(model, args.out, ccfpse.save_checkpoint)
        use = f'synthesizer = "ccfpse", ccfpse_checkpoint = "{out}"'
    n_params = sum(p.numel() for p in model.parameters())
    print(f"converted {args.checkpoint} ({n_params:,} parameters, {model.config}) -> {out}")
    print(f"use it with the trecs system: params = {{ {use} }}")
    return 0

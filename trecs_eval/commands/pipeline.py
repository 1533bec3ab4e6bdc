"""``trecs-eval pipeline ...``: train/evaluate taggers and build mask banks for the reference TReCS."""

from __future__ import annotations

import argparse

from reference_pipeline import cli_bank, cli_convert
from reference_pipeline.tag import cli as tagger_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pipeline",
                                   help="reference TReCS: taggers, mask banks, synthesizer checkpoints")
    sub = parser.add_subparsers(dest="pipeline_command", metavar="PIPELINE_COMMAND")
    tagger_cli.register(sub)
    cli_bank.register(sub)
    cli_convert.register(sub)

"""``trecs-eval pipeline train-tagger`` / ``eval-tagger`` (to be filled in by the tagger work)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``train-tagger`` and ``eval-tagger`` subcommands."""

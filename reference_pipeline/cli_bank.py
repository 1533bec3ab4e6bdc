"""``trecs-eval pipeline build-bank`` (to be filled in by the retrieve/compose work)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``build-bank`` subcommand."""

"""Shared by ``trecs-eval run`` and ``trecs-eval demo``: the UNCALIBRATED banner and the summary."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from trecs_eval.harness import RunOutcome

UNCALIBRATED_BANNER = """\
########################################################################################
##  UNCALIBRATED WEIGHTS: Inception and CLIP use SEEDED RANDOM weights (no pretrained  ##
##  weights are cached and none could be downloaded). Every number of this run is     ##
##  stamped UNCALIBRATED: it ranks systems against each other on this machine, but it ##
##  is NOT a FID / IS / CLIPScore comparable to any published value.                  ##
########################################################################################"""


def set_quiet(quiet: bool) -> None:
    """``--quiet`` on the subcommand: warnings only (the top-level flag does the same)."""
    if quiet:
        logging.getLogger().setLevel(logging.WARNING)


def print_banner() -> None:
    print(UNCALIBRATED_BANNER, file=sys.stderr, flush=True)


def print_summary(outcome: RunOutcome) -> None:
    """The summary table (Markdown) and where the report files are."""
    from reports.tables import summary_table

    print(summary_table(outcome.run_dir).to_markdown())
    if outcome.results.uncalibrated:
        print_banner()
    for fmt, path in sorted(outcome.report_paths.items()):
        print(f"report ({fmt}): {_shown(path)}")
    print(f"run directory: {_shown(outcome.run_dir)}")


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(path).resolve())

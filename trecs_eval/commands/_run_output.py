"""Shared by ``trecs-eval run`` and ``trecs-eval demo``: the terminal form of the UNCALIBRATED warning
(the tables carry `reports.tables.UNCALIBRATED_BANNER`, one sentence per table) and the summary."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from trecs_eval.harness import RunOutcome

UNCALIBRATED_TERMINAL_BOX = """\
########################################################################################
##  UNCALIBRATED WEIGHTS: {which} use SEEDED RANDOM weights (no pretrained weights
##  were given, cached or downloadable). Every number made with them is stamped
##  UNCALIBRATED: it ranks systems against each other on this machine, but it is NOT
##  comparable to any published value. Numbers without the stamp are real.
########################################################################################"""


def set_quiet(quiet: bool) -> None:
    """``--quiet`` on the subcommand: warnings only (the top-level flag does the same)."""
    if quiet:
        logging.getLogger().setLevel(logging.WARNING)


def print_banner(which: str = "Inception, CLIP") -> None:
    """The banner, naming the extractors with random weights."""
    print(UNCALIBRATED_TERMINAL_BOX.format(which=which), file=sys.stderr, flush=True)


def print_summary(outcome: RunOutcome) -> None:
    """The summary table (Markdown) and where the report files are."""
    from reports.tables import summary_table

    print(summary_table(outcome.run_dir).to_markdown())
    if outcome.results.uncalibrated:
        random = [name for name, ident in outcome.results.extractors.items() if ident.get("uncalibrated")]
        print_banner(", ".join(n.capitalize() if n == "inception" else n.upper() for n in random)
                     or "some extractors")
    for fmt, path in sorted(outcome.report_paths.items()):
        print(f"report ({fmt}): {_shown(path)}")
    print(f"run directory: {_shown(outcome.run_dir)}")


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(path).resolve())

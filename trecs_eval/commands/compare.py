"""``trecs-eval compare RUN_A RUN_B``: the regression gate (exit 1 on a significant regression)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trecs_eval.atomic import write_text
from trecs_eval.errors import ConfigError

FORMATS = ("md", "json", "junit")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="regression gate: paired test of every metric, B - A",
        description="Compare RUN_B against RUN_A over the items both share. Exit 0: no metric worsened "
                    "significantly beyond its threshold; 1: at least one did, or a gated metric could not "
                    "be tested (unless --allow-untestable); 2: bad input (different item sets or "
                    "extractor identities unless --allow-mismatch).")
    parser.add_argument("run_a", type=Path, help="baseline run directory")
    parser.add_argument("run_b", type=Path, help="candidate run directory")
    parser.add_argument("--thresholds", default="",
                        help="allowed worsening per metric, e.g. fid=+1.0,clip_score=-0.5 (default 0)")
    parser.add_argument("--format", choices=FORMATS, default="md", help="output format (default md)")
    parser.add_argument("--out", type=Path, help="write the output here (the Markdown summary still "
                                                 "goes to stdout)")
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="compare despite different item sets / extractor identities (shared items only)")
    parser.add_argument("--allow-untestable", action="store_true",
                        help="pass although some gated metrics could not be tested (they are still listed)")
    parser.add_argument("--metrics", default="", help="comma list of metrics to gate (default: all)")
    parser.add_argument("--n-resamples", type=int, default=1000,
                        help="recorded only: the gate's paired tests are analytic (kept for scripts)")
    parser.add_argument("--seed", type=int, default=0, help="recorded only (kept for scripts)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--correction", choices=("holm", "bonferroni", "none"), default="holm",
                        help="family-wise error control over all (system, metric) rows (default holm)")
    parser.add_argument("--human", type=Path, metavar="STUDY",
                        help="also gate on this human study's win rates (STUDY/analysis.json)")
    parser.add_argument("--human-gate", action="append", default=[], metavar="Q:SYSTEM:OPPONENT:MIN",
                        help="fail when SYSTEM's 95%% win-rate interval against OPPONENT on question Q lies "
                             "wholly below MIN, e.g. realism:trecs:sd:0.5 (repeatable; needs --human)")
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from reports.compare import compare_runs, parse_thresholds
    from reports.compare_output import render

    if args.n_resamples < 1:
        raise ConfigError(f"--n-resamples must be >= 1, got {args.n_resamples}")
    if not 0.0 < args.alpha < 1.0:
        raise ConfigError(f"--alpha must lie in (0, 1), got {args.alpha}")
    comparison = compare_runs(args.run_a, args.run_b, parse_thresholds(args.thresholds),
                              n_resamples=args.n_resamples, seed=args.seed, alpha=args.alpha,
                              allow_mismatch=args.allow_mismatch,
                              metrics=[m.strip() for m in args.metrics.split(",") if m.strip()] or None,
                              progress=not args.quiet, correction=args.correction,
                              allow_untestable=args.allow_untestable)
    text = render(comparison, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        if args.format != "md":
            sys.stdout.write(render(comparison, "md"))
        print(f"wrote {args.out}", file=sys.stderr)
    return max(comparison.exit_code, _human_gate(args))


def _human_gate(args: argparse.Namespace) -> int:
    if not args.human_gate:
        return 0
    if args.human is None:
        raise ConfigError("--human-gate needs --human STUDY")
    from reports.human_section import human_gate, load_analysis, render_gate

    rows = human_gate(load_analysis(args.human), args.human_gate)
    sys.stdout.write(render_gate(rows))
    return 1 if any(r.failed for r in rows) else 0

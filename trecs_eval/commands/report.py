"""``trecs-eval report RUN`` (tables, HTML report) and ``trecs-eval report --history RUNS_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trecs_eval.atomic import write_text
from trecs_eval.errors import ConfigError, suggest

FORMATS = ("md", "tex", "csv", "html")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="render a run directory as tables (md/tex/csv) or an HTML report; or a metric history",
        description="Render RUN's results. Text formats are also printed to stdout. Without --out, files go "
                    "to RUN/report/ (history: RUNS_DIR/history.<ext>).")
    parser.add_argument("run", nargs="?", type=Path, help="run directory (written by `trecs-eval run`)")
    parser.add_argument("--history", type=Path, metavar="RUNS_DIR",
                        help="instead of one run: every run under RUNS_DIR, each metric against date/commit")
    parser.add_argument("--format", default="md", help="md, tex, csv or html; a comma list for several "
                                                       "(default: md)")
    parser.add_argument("--out", type=Path,
                        help="output file (one format), directory (several), or - for stdout")
    parser.add_argument("--ci", choices=("pm", "interval", "none"), default="pm",
                        help="CI as value ± half-width (pm) or value [low, high] (interval)")
    parser.add_argument("--gallery-size", type=int, default=8, help="items in the HTML gallery (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the gallery's item sample (default 0)")
    parser.add_argument("--human", type=Path, metavar="STUDY",
                        help="add a human study's win rates (STUDY/analysis.json from `human analyze`)")
    parser.set_defaults(handler=run_report)


def _formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    for fmt in formats:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown report format {fmt!r}{suggest(fmt, FORMATS)}")
    if not formats:
        raise ConfigError(f"--format is empty; choose from {', '.join(FORMATS)}")
    return formats


def _render(args: argparse.Namespace, fmt: str) -> str:
    if args.history is not None:
        from reports.history import load_history, render_history

        return render_history(load_history(args.history), fmt)
    from reports import human_section
    from reports.load import load_run
    from reports.tables import summary_table

    run = load_run(args.run)
    study = getattr(args, "human", None)
    human = human_section.load_analysis(study) if study is not None else None
    if fmt == "html":
        from reports.html import render_html  # matplotlib is imported only when charts are drawn

        page = render_html(run, gallery_size=args.gallery_size, seed=args.seed)
        return page if human is None else human_section.insert_html_section(page, human_section.html(human))
    table = summary_table(run, ci_style=args.ci)
    return (table if human is None else human_section.add_human_columns(table, human)).render(fmt)


def _destination(args: argparse.Namespace, fmt: str, several: bool) -> Path | None:
    from reports import REPORT_FILES

    name = f"history.{'html' if fmt == 'html' else fmt}" if args.history is not None else REPORT_FILES[fmt]
    if args.out is not None:
        if str(args.out) == "-":
            return None
        return args.out / name if several else args.out
    return (args.history if args.history is not None else args.run / "report") / name


def run_report(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.history is None):
        raise ConfigError("give either a run directory or --history RUNS_DIR (not both)",
                          hint="trecs-eval report runs/demo --format md")
    if args.gallery_size < 0:
        raise ConfigError(f"--gallery-size must be >= 0, got {args.gallery_size}")
    formats = _formats(args.format)
    if args.run is not None and args.out is None:
        from trecs_eval.confine import register_root

        register_root(args.run)  # RUN/report/ is written: never through a link out of the run folder
    for fmt in formats:
        text = _render(args, fmt)
        path = _destination(args, fmt, len(formats) > 1)
        if path is None or fmt != "html":
            sys.stdout.write(text)
        if path is not None:
            write_text(path, text)
            print(f"wrote {path}", file=sys.stderr)
    return 0

"""Reports: tables, HTML, plots and the regression gate; they read only run directories.

Public API (used by the harness):

* :func:`build_report` writes the requested formats into ``RUN/report/`` (or ``out_dir``);
* :func:`reports.tables.summary_table` builds the Table (``to_markdown/to_latex/to_csv/to_html``);
* :func:`reports.compare.compare_runs` is the regression gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

REPORT_FORMATS = ("md", "tex", "csv", "html")
REPORT_FILES = {"md": "summary.md", "tex": "summary.tex", "csv": "summary.csv", "html": "report.html"}


def build_report(
    run_dir: Path, formats: Sequence[str] = ("md", "html"), out_dir: Path | None = None
) -> dict[str, Path]:
    """Write the run's summary table (md/tex/csv) and/or the full HTML report; return {format: path}.

    ``out_dir`` defaults to ``run_dir / "report"``. An unknown format is a ConfigError.
    """
    from reports.html import write_html
    from reports.load import load_run
    from reports.tables import summary_table
    from trecs_eval.atomic import ensure_dir, write_text
    from trecs_eval.errors import ConfigError, suggest

    for fmt in formats:
        if fmt not in REPORT_FORMATS:
            raise ConfigError(f"unknown report format {fmt!r}{suggest(fmt, REPORT_FORMATS)}")
    run = load_run(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "report"
    ensure_dir(out_dir)
    written: dict[str, Path] = {}
    table = summary_table(run) if any(f != "html" for f in formats) else None
    for fmt in dict.fromkeys(formats):
        path = out_dir / REPORT_FILES[fmt]
        if fmt == "html":
            write_html(run, path)
        else:
            assert table is not None
            write_text(path, table.render(fmt))
        written[fmt] = path
    return written

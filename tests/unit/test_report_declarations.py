"""Reports take a metric's header, column order and compare statistic from its declaration in
results.json (``metric_info``), not from a list in reports/; a metric no installed code knows
still shows with its declared name."""

from __future__ import annotations

import dataclasses
import math

from reports.load import load_run
from reports.tables import summary_table
from tests.report_fixtures import make_run_dir
from trecs_eval.metrics.types import MetricInfo, MetricResult
from trecs_eval.results import read_results, write_results


def _with_unknown_metric(run_dir, status: str = "ok") -> None:
    results = read_results(run_dir)
    extra = tuple(MetricResult("zeta_score", math.nan if status == "unavailable" else 0.5 + i, False, 10,
                               status=status, system=s.name) for i, s in enumerate(results.systems))
    info = {"zeta_score": MetricInfo("zeta_score", False, display_name="Zeta (plug-in)", column_order=1)}
    write_results(run_dir, dataclasses.replace(results, metrics=results.metrics + extra, metric_info=info))


def test_header_and_order_come_from_the_declaration(tmp_path):
    make_run_dir(tmp_path / "run")
    _with_unknown_metric(tmp_path / "run")
    table = summary_table(tmp_path / "run")
    assert table.columns[0].key == "zeta_score" and table.columns[0].header == "Zeta (plug-in)"
    assert table.columns[0].arrow == "↓"
    assert "Zeta (plug-in) ↓" in table.to_markdown()
    # undeclared in this run: the installed registry's declaration (FID's header and paper order)
    assert [c.header for c in table.columns[1:3]] == ["IS", "FID"]
    assert load_run(tmp_path / "run").info("fid").statistic == "frechet"


def test_an_unavailable_metric_loads_and_shows_as_unavailable(tmp_path):
    make_run_dir(tmp_path / "run")
    _with_unknown_metric(tmp_path / "run", status="unavailable")
    table = summary_table(load_run(tmp_path / "run"))
    assert table.text(0, 0) == "unavailable"

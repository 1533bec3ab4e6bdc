"""The Table model and its renderers (md, tex, csv, html), summary_table layout, history tables, loading."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from reports.history import load_history
from reports.load import load_run
from reports.tables import (
    UNAVAILABLE_NOTE,
    UNCALIBRATED_BANNER,
    UNCALIBRATED_MARK,
    Cell,
    Column,
    Table,
    ordered_metrics,
    summary_table,
)
from tests.report_fixtures import DEFAULT_VALUES, HIGHER_IS_BETTER, make_run_dir
from trecs_eval.errors import InputError
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import read_results, write_results

SYSTEMS = ("trecs", "retrieval")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("tables") / "run", systems=SYSTEMS, n_items=6)


@pytest.fixture(scope="module")
def uncalibrated_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("tables") / "uncal", systems=SYSTEMS, n_items=6,
                        uncalibrated=True)


def _rewrite_metrics(run_dir: Path, change) -> None:
    results = read_results(run_dir)
    metrics = tuple(change(m) for m in results.metrics)
    write_results(run_dir, type(results)(**{**results.__dict__, "metrics": metrics}))


def _md_cells(markdown: str) -> dict[str, list[str]]:
    """{row label: cell texts} of the first Markdown table."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    split = ([c.strip() for c in r.strip("|").split(" | ")] for r in rows[1:])
    return {cells[0]: cells[1:] for cells in split}


def test_columns_follow_paper_order_then_extensions_then_unknown_alphabetically():
    names = ["zeta", "clip_score", "fid", "kid", "alpha", "r_precision", "is", "trace_canvas_accuracy"]
    assert ordered_metrics(names) == ["is", "fid", "r_precision", "kid", "clip_score",
                                      "trace_canvas_accuracy", "alpha", "zeta"]


def test_markdown_arrows_and_bold_follow_each_declared_direction(run_dir):
    table = summary_table(run_dir)
    md = table.to_markdown()
    header = next(line for line in md.splitlines() if line.startswith("| System"))
    for column in table.columns:
        expected = "↑" if HIGHER_IS_BETTER[column.key] else "↓"
        assert f"{column.header} {expected}" in header
    cells = _md_cells(md)
    for j, column in enumerate(table.columns):
        values = DEFAULT_VALUES[column.key]
        best = max(range(2), key=lambda i: values[i] if HIGHER_IS_BETTER[column.key] else -values[i])
        assert cells[SYSTEMS[best]][j].startswith("**"), (column.key, cells)
        assert not cells[SYSTEMS[1 - best]][j].startswith("**"), (column.key, cells)


def test_flipping_a_declared_direction_flips_arrow_and_bold(tmp_path):
    run = make_run_dir(tmp_path / "run", systems=SYSTEMS, n_items=4)
    _rewrite_metrics(run, lambda m: MetricResult(**{**m.__dict__,
                                                    "higher_is_better": not m.higher_is_better}))
    table = summary_table(run)
    fid = [c.key for c in table.columns].index("fid")
    assert table.columns[fid].arrow == "↑"
    assert table.best_rows(fid) == {SYSTEMS.index("retrieval")}  # 55.5 now "better" than 40.0


def test_ci_shown_as_half_width_or_interval(run_dir):
    pm = _md_cells(summary_table(run_dir).to_markdown())
    interval = _md_cells(summary_table(run_dir, ci_style="interval").to_markdown())
    # fixture: fid of trecs is 40.0 with CI [38.0, 42.0]
    assert pm["trecs"][1] == "**40.00 ± 2.00**"
    assert interval["trecs"][1] == "**40.00 [38.00, 42.00]**"
    assert "41.0" not in pm["retrieval"][1]  # sanity: other row has its own numbers


def test_latex_is_booktabs_with_bold_best_arrows_and_escaping(tmp_path):
    run = make_run_dir(tmp_path / "run", systems=("my_sys&co", "b"), n_items=4)
    tex = summary_table(run).to_latex()
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrr}"):
        assert command in tex
    assert r"FID $\downarrow$" in tex and r"IS $\uparrow$" in tex
    assert r"my\_sys\&co & \textbf{3.50 $\pm$ 0.17}" in tex
    assert "±" not in tex.replace(r"$\pm$", "")


def test_csv_holds_full_precision_values_bounds_and_status(run_dir):
    frame = pd.read_csv(io.StringIO(summary_table(run_dir).to_csv()))
    results = read_results(run_dir)
    assert list(frame["system"]) == list(SYSTEMS)
    for m in results.metrics:
        row = frame[frame["system"] == m.system].iloc[0]
        assert row[m.name] == m.value and row[f"{m.name}_ci_low"] == m.ci_low
        assert row[f"{m.name}_ci_high"] == m.ci_high and row[f"{m.name}_status"] == "ok"
    assert set(frame["calibration"]) == {"calibrated"}


def test_uncalibrated_is_marked_in_every_format(uncalibrated_dir):
    table = summary_table(uncalibrated_dir)
    md = table.to_markdown()
    assert UNCALIBRATED_BANNER in md
    for cells in _md_cells(md).values():
        assert all(c.rstrip("*").endswith(UNCALIBRATED_MARK) for c in cells), cells
    tex = table.to_latex()
    assert "UNCALIBRATED" in tex.split(r"\begin{table}")[0] and r"\caption{\textbf{UNCALIBRATED" in tex
    assert tex.count(r"\textsuperscript{\dag}") == len(table.columns) * len(SYSTEMS)
    frame = pd.read_csv(io.StringIO(table.to_csv()))
    assert set(frame["calibration"]) == {"UNCALIBRATED (random weights)"}
    assert set(frame["fid_status"]) == {"uncalibrated"}
    html = table.to_html()
    assert 'class="banner uncalibrated"' in html and html.count(UNCALIBRATED_MARK) >= 12


def test_one_uncalibrated_metric_marks_the_whole_table(tmp_path):
    run = make_run_dir(tmp_path / "run", systems=SYSTEMS, n_items=4)
    _rewrite_metrics(run, lambda m: MetricResult(**{**m.__dict__, "status": "uncalibrated"})
                     if m.name == "kid" and m.system == "trecs" else m)
    assert UNCALIBRATED_BANNER in summary_table(run).to_markdown()


def test_failed_and_missing_values_are_never_numbers_and_never_best(tmp_path):
    run = make_run_dir(tmp_path / "run", systems=SYSTEMS, n_items=4)
    _rewrite_metrics(run, lambda m: MetricResult(**{**m.__dict__, "status": "failed", "value": math.nan})
                     if m.name == "fid" and m.system == "trecs" else m)
    results = read_results(run)
    kept = tuple(m for m in results.metrics if not (m.name == "kid" and m.system == "retrieval"))
    write_results(run, type(results)(**{**results.__dict__, "metrics": kept}))
    table = summary_table(run)
    cells = _md_cells(table.to_markdown())
    keys = [c.key for c in table.columns]
    assert cells["trecs"][keys.index("fid")] == "failed"
    assert cells["retrieval"][keys.index("fid")] == "55.50 ± 2.77"  # a lone value is not bold
    assert cells["retrieval"][keys.index("kid")] == "n/a"
    assert ",failed," in table.to_csv()


def test_ties_are_all_bold_and_undirected_columns_have_no_bold():
    cells = ((Cell(1.0001, status="ok"), Cell(5.0, status="ok")),
             (Cell(1.0002, status="ok"), Cell(6.0, status="ok")))
    table = Table("t", (Column("a", "A", True, 2), Column("b", "B", None, 1)), ("x", "y"), cells)
    assert table.best_rows(0) == {0, 1}  # equal at the displayed precision
    assert table.best_rows(1) == set()
    assert "**" not in table.to_markdown().split("| y |")[1].split("|")[2]


def test_html_table_escapes_labels():
    table = Table("<b>t</b>", (Column("a", "A<i>", True, 2),), ("<script>alert(1)</script>",),
                  ((Cell(1.0, status="ok"),),))
    html = table.to_html()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;t&lt;/b&gt;" in html and "A&lt;i&gt;" in html


def test_history_orders_runs_by_creation_and_marks_uncalibrated_runs(tmp_path):
    for name, day, fid, uncal in (("z_old", 20, 45.0, False), ("a_new", 22, 39.0, False),
                                  ("m_mid", 21, 30.0, True)):
        make_run_dir(tmp_path / name, systems=("trecs",), n_items=3, created=f"2026-11-{day}T10:00:00+00:00",
                     git_commit=f"{name}1234567", values={"fid": (fid,)}, uncalibrated=uncal)
    history = load_history(tmp_path)
    table = history.table()
    assert [label.split(" (")[1].rstrip(")") for label in table.row_labels] == ["z_old", "m_mid", "a_new"]
    assert table.cells[1][0].status == "uncalibrated"
    assert table.best_rows(0) == {2}  # the uncalibrated 30.0 never counts as best
    assert UNCALIBRATED_MARK in table.text(1, 0)
    assert re.search(r"2026-11-20 10:00:00 z_old123", table.to_markdown())


def test_loader_errors_name_the_file_and_field(tmp_path):
    with pytest.raises(InputError, match=r"results\.json"):
        load_run(tmp_path)
    run = make_run_dir(tmp_path / "run", systems=("trecs",), n_items=3)
    samples = pd.read_parquet(run / "samples.parquet")
    samples.drop(columns=["system"]).to_parquet(run / "samples.parquet")
    with pytest.raises(InputError, match=r"samples.parquet: field 'system'"):
        load_run(run)
    pd.concat([samples, samples.iloc[:1]]).to_parquet(run / "samples.parquet")
    with pytest.raises(InputError, match=r"samples.parquet:4: field 'item_id': duplicate row"):
        load_run(run)
    with pytest.raises(InputError, match="no readable run directories"):
        load_history(tmp_path / "run")


def test_one_far_off_system_does_not_round_the_others_to_zero() -> None:
    from reports.tables import column_decimals

    kid_column = [0.031, 0.012, 0.044, 1.5e7]  # noise's KID is huge; the others must stay readable
    decimals = column_decimals(kid_column)
    assert f"{0.012:.{decimals}f}" != f"{0.0:.{decimals}f}"
    assert column_decimals([250.0, 84.1, 470027.9]) == 1
    assert column_decimals([]) == 4


def test_bar_charts_switch_to_log_scale_only_for_wide_positive_ranges() -> None:
    from reports.plots import wants_log_scale

    assert wants_log_scale([84.1, 88.8, 470027.9, float("nan")])  # noise's FID
    assert not wants_log_scale([84.1, 88.8, 253.5])
    assert not wants_log_scale([-0.13, 0.7, 1.5e7])  # KID can be negative: no log axis
    assert not wants_log_scale([float("nan")])


def test_mixed_calibration_marks_only_random_cells_and_unavailable_is_said_in_every_format():
    """Real Inception (FID ok, IS unavailable: no classifier) beside random CLIP (uncalibrated)."""
    cells = ((Cell(12.5, status="ok"), Cell(status="unavailable"), Cell(0.31, status="uncalibrated")),
             (Cell(30.0, status="ok"), Cell(status="unavailable"), Cell(0.29, status="uncalibrated")))
    columns = (Column("fid", "FID", False, 2), Column("is", "IS", True, 2),
               Column("clip_score", "CLIPScore", True, 2))
    table = Table("t", columns, ("a", "b"), cells, uncalibrated=True, ci_style="none")
    md = _md_cells(table.to_markdown())
    assert md["a"] == ["**12.50**", "unavailable", f"**0.31{UNCALIBRATED_MARK}**"]
    assert UNAVAILABLE_NOTE in table.to_markdown() and UNAVAILABLE_NOTE.split(":")[0] in table.to_latex()
    frame = pd.read_csv(io.StringIO(table.to_csv()))
    assert list(frame["is_status"]) == ["unavailable"] * 2 and list(frame["fid_status"]) == ["ok"] * 2
    html = table.to_html()
    assert '<td class="unavailable">unavailable</td>' in html and "12.50</strong></td>" in html


def _interval_table() -> Table:
    columns = (Column("fid", "FID", False, 2), Column("clip_score", "CLIPScore", True, 2))
    cells = ((Cell(40.0, 37.5, 42.5, "ok"), Cell(27.1, 26.0, 27.5, "ok")),   # symmetric | asymmetric
             (Cell(55.5, 50.0, 61.0, "ok"), Cell(25.3, 25.0, 26.8, "ok")))
    return Table("Intervals", columns, ("trecs", "retrieval"), cells)


def test_plus_minus_only_for_symmetric_intervals_and_all_formats_agree() -> None:
    table = _interval_table()
    md = _md_cells(table.to_markdown())
    assert md["trecs"][0] == "**40.00 ± 2.50**" and md["retrieval"][0] == "55.50 ± 5.50"
    # 27.1 [26.0, 27.5] has half-widths 1.1 and 0.4: no ± may stand for it.
    assert md["trecs"][1] == "**27.10 [26.00, 27.50]**" and md["retrieval"][1] == "25.30 [25.00, 26.80]"
    texts = {(r, c): table.text(r, c) for r in range(2) for c in range(2)}
    tex = table.to_latex()
    html_text = table.to_html()
    for text in texts.values():
        assert text.replace("±", r"$\pm$") in tex
        assert text in html_text
    rows = list(csv_reader(table.to_csv()))
    header = rows[0]
    for r, row in enumerate(rows[1:]):
        for c, column in enumerate(table.columns):
            value = float(row[header.index(column.key)])
            low = float(row[header.index(f"{column.key}_ci_low")])
            high = float(row[header.index(f"{column.key}_ci_high")])
            shown = texts[(r, c)]
            assert shown.startswith(f"{value:.2f}")
            assert (f"[{low:.2f}, {high:.2f}]" in shown) or (f"± {(high - low) / 2:.2f}" in shown)
    assert "symmetric" in table.footnotes()[0]


def csv_reader(text: str):
    import csv

    return csv.reader(io.StringIO(text))

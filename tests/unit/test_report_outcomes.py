"""What each number of a report is: stamps only on random-weight numbers; not applicable, unavailable
(why) and failed (why) kept apart in tables and charts; metrics grouped by their declared family."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reports import plots
from reports.html import metric_charts, summary_html
from reports.load import load_run
from reports.outcome import (
    FAILED,
    NOT_APPLICABLE,
    UNAVAILABLE,
    column_stamped,
    is_uncalibrated,
    metric_outcomes,
    shown_metrics,
)
from reports.tables import NOT_APPLICABLE_NOTE, families, metric_family, summary_table
from tests.report_fixtures import (
    CANVAS_METRICS,
    CANVAS_SYSTEMS,
    DEMO_METRICS,
    DEMO_SYSTEMS,
    DENSITY_FAILED_WHY,
    IS_UNAVAILABLE_WHY,
    RANDOM_CLIP_IDENTITY,
    RANDOM_CLIP_METRICS,
    make_demo_shaped_run,
)
from trecs_eval.metrics.registry import BUILTIN_METRICS, metric

NO_CANVAS = [s for s in DEMO_SYSTEMS if s not in CANVAS_SYSTEMS]
# Columns per summary table: at most this many metrics sit side by side (readable at 1400 px).
MAX_FAMILY_COLUMNS = 5


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_shaped_run(tmp_path_factory.mktemp("outcomes") / "demo")


@pytest.fixture(scope="module")
def demo_charts(demo) -> dict[str, dict[str, object]]:
    return _charts(load_run(demo))


def _charts(run) -> dict[str, dict[str, object]]:
    return {c["metric"]: c for _, charts in metric_charts(run) for c in charts}


def test_only_metrics_with_random_weight_numbers_are_stamped(demo, demo_charts):
    run = load_run(demo)
    charts = demo_charts
    stamped = {name for name, chart in charts.items() if chart["stamped"]}
    assert stamped == set(RANDOM_CLIP_METRICS)  # not FID/KID (real weights), not canvas (no weights)
    assert run.uncalibrated  # the run as a whole is flagged; the stamp still follows each result


def test_an_uncalibrated_extractor_identity_is_enough_for_the_stamp():
    from trecs_eval.metrics.types import MetricResult

    plain = MetricResult("x", 1.0, True, 3, extractor={"name": "clip"})
    random_identity = MetricResult("x", 1.0, True, 3, extractor=dict(RANDOM_CLIP_IDENTITY))
    assert not is_uncalibrated(plain) and is_uncalibrated(random_identity)
    assert is_uncalibrated(MetricResult("x", 1.0, True, 3, status="uncalibrated"))
    assert not is_uncalibrated(None)


def test_all_unavailable_metric_gets_one_line_with_the_reason_and_no_chart(demo_charts):
    chart = demo_charts["is"]
    assert chart["uri"] == "" and chart["notes"] == []
    assert UNAVAILABLE in chart["line"] and IS_UNAVAILABLE_WHY in chart["line"]
    assert FAILED not in chart["line"].replace(IS_UNAVAILABLE_WHY, "")


def test_a_configured_metric_with_no_result_at_all_gets_one_line(tmp_path):
    from dataclasses import replace

    from trecs_eval.results import read_results, write_results

    run_dir = make_demo_shaped_run(tmp_path / "run")
    results = read_results(run_dir)  # as if no system of the run drew a canvas
    kept = tuple(m for m in results.metrics if m.name != "canvas_miou")
    write_results(run_dir, replace(results, metrics=kept))
    run = load_run(run_dir)
    assert "canvas_miou" not in run.metric_names and "canvas_miou" in shown_metrics(run)
    outcomes = metric_outcomes(run, "canvas_miou", "Canvas mIoU")
    assert not outcomes.has_values
    assert outcomes.line().startswith("Canvas mIoU: not applicable to any system")


def test_canvas_chart_draws_only_the_systems_it_applies_to_and_says_so(demo):
    run = load_run(demo)
    for name in CANVAS_METRICS:
        outcomes = metric_outcomes(run, name, name)
        assert outcomes.drawn == list(CANVAS_SYSTEMS)
        assert outcomes.notes() == [next(n for n in outcomes.notes() if n.startswith(NOT_APPLICABLE))]
        assert ", ".join(NO_CANVAS) in outcomes.notes()[0]


def test_a_failure_keeps_its_slot_and_its_reason(demo):
    outcomes = metric_outcomes(load_run(demo), "density", "Density")
    assert outcomes.drawn == list(DEMO_SYSTEMS)
    assert outcomes.notes() == [f"{FAILED} for noise: {DENSITY_FAILED_WHY}"]


def test_stamp_is_drawn_exactly_when_the_outcomes_say_so(demo):
    run = load_run(demo)
    clip = metric_outcomes(run, "clip_score", "CLIPScore")
    calibrated = type(clip)(clip.metric, clip.label, {
        s: r.__class__(**{**r.__dict__, "status": "ok", "extractor": {}}) for s, r in clip.results.items()})
    assert clip.stamped and not calibrated.stamped
    with_stamp, without = (_png(plots.metric_bars(o)) for o in (clip, calibrated))
    assert with_stamp.shape == without.shape
    differs = np.any(with_stamp != without, axis=2)
    assert differs.mean() > 0.005  # the watermark covers part of the axes
    red, green = with_stamp[differs][:, 0].astype(int), with_stamp[differs][:, 1].astype(int)
    assert np.median(red - green) > 30  # and it is the red stamp


def _png(uri: str) -> np.ndarray:
    import base64

    data = base64.b64decode(uri.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def test_tables_say_na_unavailable_and_failed_apart_with_reasons(demo):
    table = summary_table(demo)
    keys = [c.key for c in table.columns]
    row = {label: r for r, label in enumerate(table.row_labels)}
    for system in NO_CANVAS:
        for name in CANVAS_METRICS:
            assert table.text(row[system], keys.index(name)) == "n/a"
    assert {table.text(row[s], keys.index("is")) for s in DEMO_SYSTEMS} == {"unavailable"}
    assert table.text(row["noise"], keys.index("density")) == "failed"
    notes = table.footnotes()
    assert NOT_APPLICABLE_NOTE in notes
    assert any(n.endswith(IS_UNAVAILABLE_WHY) and ", ".join(DEMO_SYSTEMS) in n for n in notes)
    assert f"Density: failed for noise: {DENSITY_FAILED_WHY}" in notes
    frame = pd.read_csv(io.StringIO(table.to_csv()))
    statuses = frame.set_index("system")
    assert set(statuses.loc[NO_CANVAS, "canvas_miou_status"]) == {"not_applicable"}
    assert statuses.loc["noise", "density_status"] == "failed"
    html = table.to_html()
    assert f'<td class="unavailable" title="{IS_UNAVAILABLE_WHY}">unavailable</td>' in html


def test_uncalibrated_marks_follow_each_result_not_the_run(demo):
    table = summary_table(demo)
    for c, column in enumerate(table.columns):
        marked = {table.cells[r][c].status == "uncalibrated" for r in range(len(table.row_labels))}
        assert marked == {column.key in RANDOM_CLIP_METRICS} or column.key in ("is", "density"), column.key


def test_every_builtin_metric_declares_a_family():
    for name in BUILTIN_METRICS:
        assert metric(name).info.family, name
    assert metric_family("no_such_plugin_metric") == "other"


def test_summary_is_one_narrow_table_per_family_and_notes_once(demo):
    run = load_run(demo)
    grouped = families(list(DEMO_METRICS), run)
    assert sum(len(m) for m in grouped.values()) == len(DEMO_METRICS)
    assert all(len(m) <= MAX_FAMILY_COLUMNS for m in grouped.values()), grouped
    assert set(grouped) >= {"image quality", "text alignment", "trace adherence", "fidelity/diversity"}
    page = str(summary_html(run))
    assert page.count('<table class="summary">') == len(grouped)
    assert page.count(NOT_APPLICABLE_NOTE) == 1
    assert "banner" not in page  # the page shows its banner once, above the summary
    for family, names in grouped.items():
        section = re.search(rf'data-family="{re.escape(family)}">(.*?)</section>', page).group(1)
        assert section.count("<th title=") == len(names)


def test_history_marks_only_the_random_weight_numbers_of_a_mixed_run(demo, tmp_path):
    import shutil

    from reports.history import load_history

    shutil.copytree(demo, tmp_path / "runs" / "demo")
    table = load_history(tmp_path / "runs").table()
    for c, column in enumerate(table.columns):
        name = column.key.split(":")[1]
        status = table.cells[0][c].status
        if name in RANDOM_CLIP_METRICS:
            assert status == "uncalibrated", column.key
        elif name in ("fid", "kid"):
            assert status == "ok", column.key  # real Inception weights: no mark, whatever the run flag


def test_per_sample_charts_are_stamped_only_for_random_weight_columns(demo):
    run = load_run(demo)
    stamped = {c for c in run.per_sample_columns if column_stamped(run, c)}
    assert stamped == set(RANDOM_CLIP_METRICS) & set(run.per_sample_columns)  # not trace_canvas_accuracy
    assert stamped  # the fixture's samples hold CLIPScore and R-precision columns
    assert not column_stamped(run, "trace_canvas_accuracy") and not column_stamped(run, "unrelated")

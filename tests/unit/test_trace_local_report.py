"""The trace-local report section: crops of the gallery items with their scores, per-class tables
and CSV, escaped text; a run without the metric gets no section."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import re

import pandas as pd

from reports import trace_local_section
from reports.html import GALLERY_SIZE, UTTERANCE_COLOURS, gallery, render_html
from reports.load import load_run
from tests.report_fixtures import make_run_dir
from trecs_eval.data.localized_narratives import read_narratives
from trecs_eval.metrics.by_class import BY_CLASS_PARAM
from trecs_eval.metrics.trace_local_clip import LOCAL, UTTERANCES_COLUMN, narrative_regions
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import read_results, write_results

BY_CLASS = {"dog": {"n": 9, "n_images": 6, "mean": 31.5, "ci_low": 28.0, "ci_high": 35.0},
            "grass": {"n": 4, "n_images": 1, "mean": 22.0, "ci_low": None, "ci_high": None}}


def _with_trace_local(run_dir):
    narratives = {n.item_id: n for n in read_narratives(run_dir / "narratives.jsonl").narratives}
    samples = pd.read_parquet(run_dir / "samples.parquet")
    column = []
    for item_id in samples["item_id"]:
        scored = narrative_regions(narratives[item_id]).scored
        column.append(json.dumps({"index": [u.index for u in scored],
                                  "local": [40.0 + u.index for u in scored],
                                  "contrast": [None for _ in scored]}))
    samples[UTTERANCES_COLUMN] = column
    samples.to_parquet(run_dir / "samples.parquet", index=False)
    results = read_results(run_dir)
    params = {"min_box_side": 1 / 16, BY_CLASS_PARAM: BY_CLASS}
    extra = tuple(MetricResult(LOCAL, 30.0, True, 24, 28.0, 32.0, system=s.name, params=params)
                  for s in results.systems)
    write_results(run_dir, dataclasses.replace(results, metrics=results.metrics + extra))
    return narratives


def test_section_shows_each_scored_crop_with_its_score_and_the_class_tables(tmp_path):
    run_dir = make_run_dir(tmp_path / "run")
    narratives = _with_trace_local(run_dir)
    run = load_run(run_dir)
    html = render_html(run)
    assert 'id="trace-local"' in html and 'id="by-class"' in html
    hostile = next(i for i, n in narratives.items() if "<script>" in n.caption)
    items = list(dict.fromkeys([hostile] + [e["item_id"] for e in gallery(run, GALLERY_SIZE, 0)]))
    expected = sum(len(narrative_regions(narratives[i]).scored) for i in items) * len(run.systems)
    section = str(trace_local_section.section(run, items, UTTERANCE_COLOURS))
    assert section.count('alt="crop"') == expected > 0
    assert "score 40" in section and "contrast –" in section
    assert "<script>" not in section  # the hostile caption's utterances arrive escaped
    link = re.search(r'href="data:text/csv;base64,([^"]+)"', section).group(1)
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(link).decode())))
    assert len(rows) == 2 * len(run.systems)
    dog = next(r for r in rows if r["class"] == "dog")
    assert (dog["metric"], float(dog["mean"]), dog["n"]) == (LOCAL, 31.5, "9")
    assert next(r for r in rows if r["class"] == "grass")["ci_low"] == ""  # no interval: empty, not 0
    assert "31.5 [28, 35]" in section and "22 [–, –]" in section


def test_run_without_the_metric_gets_no_crop_section(tmp_path):
    run = load_run(make_run_dir(tmp_path / "plain"))
    section = str(trace_local_section.section(run, [], UTTERANCE_COLOURS))
    assert 'id="trace-local"' not in section

"""Tables show the n a per-item value was computed on when items were excluded, and name pooled ratios."""

from __future__ import annotations

import json

from reports.history import load_history
from reports.tables import PARTIAL_NOTE, summary_table
from tests.report_fixtures import DEFAULT_VALUES, make_run_dir


def test_a_value_over_fewer_items_than_the_system_has_shows_its_n(tmp_path):
    values = {**DEFAULT_VALUES, "canvas_miou": (0.5, 0.4)}
    run = make_run_dir(tmp_path / "runs" / "a", systems=("trecs", "retrieval"), n_items=10, values=values)
    data = json.loads((run / "results.json").read_text())
    for m in data["metrics"]:
        if m["system"] == "trecs" and m["name"] in ("trace_canvas_accuracy", "fid"):
            m["n"] = 7  # three narratives without a value; FID's n is a set size, never annotated
    (run / "results.json").write_text(json.dumps(data))
    table = summary_table(run)
    column = {c.key: i for i, c in enumerate(table.columns)}
    trecs = table.row_labels.index("trecs")
    assert table.text(trecs, column["trace_canvas_accuracy"]).endswith("(n=7)")
    assert "(n=" not in table.text(trecs, column["fid"])
    assert "(n=" not in table.text(table.row_labels.index("retrieval"), column["trace_canvas_accuracy"])
    markdown = table.to_markdown()
    assert PARTIAL_NOTE in markdown and "Pooled ratios" in markdown and "Canvas mIoU" in markdown
    history = load_history(tmp_path / "runs").table().to_markdown()
    assert "(n=7)" in history

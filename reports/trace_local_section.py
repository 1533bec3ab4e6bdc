"""Report section: where the words were pointed, and which classes a system misplaces.

Two parts, both read from the run directory only:

* **Trace-local crops** (runs with ``trace_local_clip``): for each gallery item and system, the
  system's image with the trace drawn over it (one colour per utterance, the gallery's colours)
  and the box each scored utterance was cropped to, then the crops themselves with the utterance
  and its scores. Boxes and crops are recomputed with the metric's own functions
  (:func:`trecs_eval.metrics.trace_local_clip.narrative_regions`,
  :func:`trecs_eval.data.trace_regions.box_pixels`) and the run's ``min_box_side``; scores are the
  run's (``samples.parquet``, column ``trace_local_clip_utterances``).
* **Per-class breakdowns**: every metric whose result carries ``by_class`` (trace-local CLIP by the
  utterance's gold class, the trace metrics by the span's or word's class): an HTML table of the
  classes with the most items, mean and 95 % interval per system, and the same rows as a CSV
  (:func:`by_class_csv`, linked from the page as a download).

Narrative text only reaches the page escaped; the page gains no script.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from markupsafe import Markup, escape
from PIL import Image, ImageDraw

from reports.load import LoadedRun
from trecs_eval.data.narratives import align_utterances
from trecs_eval.data.trace_regions import MIN_BOX_SIDE, box_pixels
from trecs_eval.features.decode import decode_rgb
from trecs_eval.metrics.by_class import BY_CLASS_PARAM
from trecs_eval.metrics.trace_local_clip import LOCAL, UTTERANCES_COLUMN, narrative_regions

IMAGE_PX = 240
CROP_PX = 96
TABLE_CLASSES = 15
CSV_FIELDS = ("metric", "system", "class", "n", "n_images", "mean", "ci_low", "ci_high")


def _uri(image: Image.Image, side: int) -> str:
    scale = side / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"


def _scores(row: pd.Series) -> dict[int, tuple[Any, Any]] | None:
    raw = row.get(UTTERANCES_COLUMN) if row is not None else None
    if not isinstance(raw, str):
        return None
    data = json.loads(raw)
    triples = zip(data["index"], data["local"], data["contrast"], strict=True)
    return {int(i): (local, contrast) for i, local, contrast in triples}


def _system_block(run: LoadedRun, item_id: str, system: str, colours: Sequence[str]) -> str:
    samples = run.samples
    assert samples is not None  # crops_section checked
    rows = samples[(samples["system"] == system) & (samples["item_id"] == item_id)]
    row = None if rows.empty else rows.iloc[0]
    scores = _scores(row) if row is not None else None
    narrative = run.narratives.get(item_id)
    path = run.resolve(row.get("image_path")) if row is not None else None
    if scores is None or narrative is None or path is None or not path.is_file():
        return f'<div class="cell"><b>{escape(system)}</b><p class="note">no trace-local scores</p></div>'
    result = run.metric(system, LOCAL)
    min_side = float(result.params.get("min_box_side", MIN_BOX_SIDE)) if result is not None else MIN_BOX_SIDE
    image = Image.fromarray(decode_rgb(path))
    drawn = image.copy()
    draw = ImageDraw.Draw(drawn)
    w, h = drawn.size
    for i, utterance in enumerate(align_utterances(narrative)):
        points = [(x * (w - 1), y * (h - 1)) for x, y in utterance.points]
        if len(points) > 1:
            draw.line(points, fill=colours[i % len(colours)], width=max(1, w // 80))
    crops = []
    for region in narrative_regions(narrative, None, min_side).scored:
        colour = colours[region.index % len(colours)]
        box = box_pixels(region.box, w, h)
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=colour, width=max(1, w // 128))
        local, contrast = scores.get(region.index, (None, None))
        crops.append(
            f'<div class="cell"><img src="{_uri(image.crop(box), CROP_PX)}" alt="crop"><br>'
            f'<span style="color:{colour}">{escape(region.text)}</span><br>'
            f"score {_number(local)} · contrast {_number(contrast)}</div>")
    return (f'<div class="cell"><b>{escape(system)}</b><br><img src="{_uri(drawn, IMAGE_PX)}" '
            f'alt="{escape(system)} with trace"><div class="row">{"".join(crops)}</div></div>')


def crops_section(run: LoadedRun, item_ids: Sequence[str], colours: Sequence[str]) -> str:
    """The trace-local crops of ``item_ids`` for every system ("" when the run has no such column)."""
    if run.samples is None or UTTERANCES_COLUMN not in run.samples.columns:
        return ""
    parts = ['<h2 id="trace-local">Trace-local crops</h2><p class="note">Each system\'s image with the '
             "trace (one colour per utterance) and the box each scored utterance was cropped to; below, the "
             "crops with the utterance's trace-local CLIP score and contrast.</p>"]
    for item_id in item_ids:
        blocks = "".join(_system_block(run, item_id, s, colours) for s in run.systems)
        parts.append(f'<h3>{escape(item_id)}</h3><div class="row">{blocks}</div>')
    return "".join(parts)


def by_class_rows(run: LoadedRun) -> list[dict[str, Any]]:
    """One row per (metric, system, class) of every result with a ``by_class`` breakdown."""
    rows = []
    for result in run.results.metrics:
        for label, stats in (result.params.get(BY_CLASS_PARAM) or {}).items():
            rows.append({"metric": result.name, "system": result.system, "class": label,
                         **{k: stats.get(k) for k in CSV_FIELDS[3:]}})
    return rows


def by_class_csv(run: LoadedRun) -> str:
    """:func:`by_class_rows` as CSV text (empty bounds where a class has no interval)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in by_class_rows(run):
        writer.writerow({k: "" if row[k] is None else row[k] for k in CSV_FIELDS})
    return out.getvalue()


def _class_table(metric: str, rows: list[dict[str, Any]], systems: Sequence[str]) -> str:
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["class"]] = totals.get(r["class"], 0) + int(r["n"])
    classes = sorted(totals, key=lambda c: (-totals[c], c))[:TABLE_CLASSES]
    cell = {(r["system"], r["class"]): r for r in rows}
    head = "".join(f"<th>{escape(s)}</th>" for s in systems)
    body = []
    for label in classes:
        cells = []
        for system in systems:
            r = cell.get((system, label))
            cells.append("<td>–</td>" if r is None else
                         f"<td>{_number(r['mean'])} [{_number(r['ci_low'])}, {_number(r['ci_high'])}] "
                         f"<small>n={r['n']}</small></td>")
        body.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
    return (f"<h3>{escape(metric)}</h3><table><tr><th>class</th>{head}</tr>{''.join(body)}</table>")


def by_class_section(run: LoadedRun) -> str:
    """Per-class tables (classes with the most items) and a CSV download; "" when none."""
    rows = by_class_rows(run)
    if not rows:
        return ""
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    csv_uri = "data:text/csv;base64," + base64.b64encode(by_class_csv(run).encode()).decode("ascii")
    tables = "".join(_class_table(m, [r for r in rows if r["metric"] == m], run.systems) for m in metrics)
    return ('<h2 id="by-class">Per-class breakdown</h2><p class="note">Mean and 95 % interval (images '
            f"resampled) per class, the {TABLE_CLASSES} classes with the most items; "
            f'<a download="by_class.csv" href="{csv_uri}">all rows as CSV</a>.</p>{tables}')


def section(run: LoadedRun, item_ids: Sequence[str], colours: Sequence[str]) -> Markup:
    """Both parts as one block of HTML for the report page (built from escaped pieces only)."""
    return Markup(crops_section(run, item_ids, colours) + by_class_section(run))


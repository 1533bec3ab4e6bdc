"""The self-contained HTML report of one run directory (inline CSS, images embedded as base64).

Sections: summary tables (one per metric family, so the page never scrolls sideways), one bar
chart per metric with CI whiskers (stamped UNCALIBRATED only where its own numbers came from
random weights; a metric no system has a number for gets one line instead), per-label accuracy (when
a metric's params carry ``per_label*`` data; otherwise the report says it is absent),
per-sample score distributions, a seeded gallery (narrative with coloured utterances, the
trace drawn over the reference image, each system's image and canvas with a label legend),
best/worst items per system by CLIPScore and trace-canvas accuracy, and provenance.

Narrative text is untrusted: it only reaches the page through Jinja2 autoescaping, and the
page contains no script at all.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup
from PIL import Image, ImageDraw

from reports import plots, trace_local_section
from reports.load import LoadedRun, as_run
from reports.outcome import column_stamped, metric_outcomes, shown_metrics
from reports.tables import UNCALIBRATED_BANNER, display_name, families, ordered_metrics, summary_table
from trecs_eval.atomic import write_text
from trecs_eval.data.coco_stuff import PALETTE, UNLABELED_IDS, colorize, label_name
from trecs_eval.data.narratives import Narrative, align_utterances
from trecs_eval.features.decode import decode_rgb

TEMPLATE_DIR = Path(__file__).parent / "templates"
THUMB_PX = 160
TRACE_PX = 240
GALLERY_SIZE = 8
EXTREMES_K = 3
LEGEND_MAX = 12
# Utterance colours (matplotlib tab10): the same colour marks the words and the trace drawn while saying them.
UTTERANCE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                     "#7f7f7f", "#bcbd22", "#17becf")


@dataclass
class Picture:
    """An embedded thumbnail (``uri``) or the reason there is none (``missing``)."""

    uri: str = ""
    missing: str = ""
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label name, hex colour)


def _png_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    # zlib level 1: 4.5x faster than optimize=True (2.1 vs 9.3 ms per 160 px thumbnail), 11 % larger
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail(path: Path | None) -> Picture:
    if path is None:
        return Picture(missing="no image recorded")
    if not path.is_file():
        return Picture(missing=f"missing file: {path}")
    picture = _fit(Image.fromarray(decode_rgb(path)), THUMB_PX, Image.Resampling.BICUBIC)  # any mode
    return Picture(uri=_png_uri(picture))


def _fit(image: Image.Image, side: int, resample: Image.Resampling) -> Image.Image:
    """Scale (up or down) so the longer side is ``side`` pixels: small images stay readable."""
    scale = side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)


def canvas_picture(path: Path | None) -> Picture:
    """Palette picture of a label-id canvas and a legend of its largest labels."""
    if path is None:
        return Picture(missing="no canvas")
    if not path.is_file():
        return Picture(missing=f"missing file: {path}")
    with Image.open(path) as image:
        ids = np.asarray(image)
    if ids.ndim != 2:
        return Picture(missing=f"not a label-id canvas (shape {ids.shape}): {path}")
    picture = _fit(Image.fromarray(colorize(ids)), THUMB_PX, Image.Resampling.NEAREST)  # never blend labels
    labels, counts = np.unique(ids, return_counts=True)
    order = [int(labels[i]) for i in np.argsort(-counts) if int(labels[i]) not in UNLABELED_IDS]
    legend = [(_safe_label(lab), _hex(PALETTE[lab])) for lab in order[:LEGEND_MAX]]
    return Picture(uri=_png_uri(picture), legend=legend)


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def _safe_label(label: int) -> str:
    try:
        return label_name(label)
    except KeyError:
        return f"id {label}"


def trace_picture(narrative: Narrative | None, reference: Path | None) -> Picture:
    """The mouse trace over the reference image (grey square when there is none), one colour per utterance."""
    if reference is not None and reference.is_file():
        base = _fit(Image.fromarray(decode_rgb(reference)), TRACE_PX, Image.Resampling.BICUBIC)
        note = ""
    else:
        base = Image.new("RGB", (TRACE_PX, TRACE_PX), (200, 200, 200))
        note = "no reference image" if reference is None else f"missing file: {reference}"
    if narrative is None:
        return Picture(uri=_png_uri(base), missing="no narrative for this item")
    draw = ImageDraw.Draw(base)
    w, h = base.size
    trace = np.clip(narrative.trace_array()[:, :2], 0.0, 1.0)
    if len(trace) > 1:  # the whole trace in white first, so points outside every utterance still show
        draw.line([(x * (w - 1), y * (h - 1)) for x, y in trace], fill=(255, 255, 255), width=1)
    for i, utterance in enumerate(align_utterances(narrative)):
        points = [(x * (w - 1), y * (h - 1)) for x, y in utterance.points]
        if len(points) > 1:
            draw.line(points, fill=UTTERANCE_COLOURS[i % len(UTTERANCE_COLOURS)], width=3)
    return Picture(uri=_png_uri(base), missing=note)


def narrative_segments(narrative: Narrative | None, fallback: str) -> list[tuple[str, str]]:
    """(text, colour) per utterance; plain caption in black when there are no timed utterances."""
    if narrative is None or not narrative.timed_caption:
        return [(narrative.caption if narrative else fallback, "#000000")]
    return [(u.utterance, UTTERANCE_COLOURS[i % len(UTTERANCE_COLOURS)])
            for i, u in enumerate(narrative.timed_caption)]


def _row_for(run: LoadedRun, system: str, item_id: str) -> pd.Series | None:
    assert run.samples is not None
    rows = run.samples[(run.samples["system"] == system) & (run.samples["item_id"] == item_id)]
    return None if rows.empty else rows.iloc[0]


def gallery(run: LoadedRun, size: int = GALLERY_SIZE, seed: int = 0) -> list[dict[str, object]]:
    """``size`` items drawn without replacement by ``default_rng(seed)`` from the sorted item ids."""
    if run.samples is None or run.samples.empty:
        return []
    items = sorted(run.samples["item_id"].unique())
    chosen = sorted(np.random.default_rng(seed).choice(len(items), min(size, len(items)), replace=False))
    entries = []
    for index in chosen:
        item_id = items[index]
        rows = {s: _row_for(run, s, item_id) for s in run.systems}
        first = next((r for r in rows.values() if r is not None), None)
        narrative = run.narratives.get(item_id)
        reference = run.resolve(first.get("reference_path")) if first is not None else None
        caption = str(first.get("narrative", "")) if first is not None else ""
        entries.append({
            "item_id": item_id,
            "segments": narrative_segments(narrative, caption),
            "trace": trace_picture(narrative, reference),
            "systems": [_system_cell(run, s, r) for s, r in rows.items()],
        })
    return entries


def _system_cell(run: LoadedRun, system: str, row: pd.Series | None) -> dict[str, object]:
    if row is None:
        return {"name": system, "image": Picture(missing="no sample for this item"), "canvas": Picture()}
    return {"name": system, "image": thumbnail(run.resolve(row.get("image_path"))),
            "canvas": canvas_picture(run.resolve(row.get("canvas_path")))}


def extremes(run: LoadedRun, k: int = EXTREMES_K) -> list[dict[str, object]]:
    """Best and worst ``k`` items per system for each per-item metric (declared ``scope = "item"``)
    whose values are graded (more than two distinct values: a 0/1 hit has no "best three")."""
    if run.samples is None:
        return []
    sections = []
    graded = [c for c in run.per_sample_columns
              if run.info(c).scope == "item" and run.samples[c].dropna().nunique() > 2]
    for column in graded:
        higher = _direction(run, column)
        for system in run.systems:
            rows = run.samples[run.samples["system"] == system].dropna(subset=[column])
            ranked = rows.sort_values(column, ascending=not higher, kind="stable")
            best = [_extreme_entry(run, r, column) for _, r in ranked.head(k).iterrows()]
            worst = [_extreme_entry(run, r, column) for _, r in ranked.tail(k)[::-1].iterrows()]
            sections.append({"column": display_name(column, run), "system": system, "best": best,
                             "worst": worst, "higher_is_better": higher})
    return sections


def _direction(run: LoadedRun, column: str) -> bool:
    try:
        return run.metric_info(column).higher_is_better
    except KeyError:
        return True  # a score column with no declared metric: ranked high-to-low, stated in the template


def _extreme_entry(run: LoadedRun, row: pd.Series, column: str) -> dict[str, object]:
    text = str(row.get("narrative", ""))
    return {"item_id": row["item_id"], "value": f"{float(row[column]):.4g}",
            "image": thumbnail(run.resolve(row.get("image_path"))),
            "text": text if len(text) <= 160 else text[:157] + "..."}


def provenance(run: LoadedRun) -> dict[str, object]:
    r = run.results
    metrics = [{"system": m.system, "name": m.name, "n": m.n, "seed": m.seed, "status": m.status,
                "extractor": m.extractor.get("name") or json.dumps(m.extractor, sort_keys=True),
                "warnings": "; ".join(m.warnings)} for m in r.metrics]
    return {"run_id": r.run_id, "created": r.created, "git_commit": r.git_commit or "unknown",
            "config_hash": r.config_hash, "seed": r.seed, "schema_version": r.schema_version,
            "config": json.dumps(r.config, indent=2, sort_keys=True, default=str),
            "dataset": json.dumps(r.dataset, indent=2, sort_keys=True, default=str),
            "extractors": json.dumps(r.extractors, indent=2, sort_keys=True, default=str),
            "versions": r.versions, "timings": r.timings, "metrics": metrics, "warnings": list(r.warnings),
            "systems": r.systems}


def summary_html(run: LoadedRun) -> Markup:
    """The summary table split by metric family (one narrow table each), footnotes once below."""
    table = summary_table(run)
    keys = [c.key for c in table.columns]
    parts = []
    for family, metrics in families(keys, run).items():
        sub = table.subset([keys.index(m) for m in metrics], f"{table.title}: {family}")
        parts.append(f'<section class="family" data-family="{html.escape(family, quote=True)}">'
                     f"{sub.to_html(banner=False, notes=False)}</section>")
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in table.footnotes()]
    return Markup("".join(parts))  # the Table renderer escapes every cell itself


def metric_charts(run: LoadedRun) -> list[tuple[str, list[dict[str, object]]]]:
    """``[(family, charts)]``: per metric a bar chart, or only a line when no system has a number."""
    grouped = families(ordered_metrics(shown_metrics(run), run), run)
    sections = []
    for family, metrics in grouped.items():
        charts = []
        for metric in metrics:
            outcomes = metric_outcomes(run, metric, display_name(metric, run))
            drawn = outcomes.has_values
            charts.append({"metric": metric, "label": outcomes.label, "stamped": drawn and outcomes.stamped,
                           "uri": plots.metric_bars(outcomes) if drawn else "",
                           "notes": outcomes.notes() if drawn else [],
                           "line": "" if drawn else outcomes.line()})
        sections.append((family, charts))
    return sections


def render_html(run: LoadedRun | Path, gallery_size: int = GALLERY_SIZE, seed: int = 0) -> str:
    """The whole report as one HTML string."""
    run = as_run(run)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    per_label = plots.per_label_values(run)
    stamps = {name: column_stamped(run, name) for name in [*per_label, *run.per_sample_columns]}
    entries = gallery(run, gallery_size, seed)
    return env.get_template("report.html.j2").render(
        title=f"trecs-eval report: {run.results.run_id}",
        uncalibrated=run.uncalibrated, banner=UNCALIBRATED_BANNER,
        table_html=summary_html(run), charts=metric_charts(run),
        per_label=[(m, display_name(m, run), plots.per_label_chart(m, v, stamps[m]), stamps[m])
                   for m, v in per_label.items()],
        distributions=[(c, display_name(c, run), plots.distribution_chart(run, c, stamps[c]), stamps[c])
                       for c in run.per_sample_columns],
        gallery=entries, gallery_seed=seed, extremes=extremes(run),
        trace_local=trace_local_section.section(run, [e["item_id"] for e in entries], UTTERANCE_COLOURS),
        provenance=provenance(run),
    )


def write_html(
    run: LoadedRun | Path, out_path: Path, gallery_size: int = GALLERY_SIZE, seed: int = 0
) -> Path:
    write_text(out_path, render_html(run, gallery_size, seed))
    return out_path

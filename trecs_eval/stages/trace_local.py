"""Trace-local CLIP metrics of every system: crops where each utterance's trace points, scored
against the utterance with the run's CLIP (``clip_crops`` space: the ``clip`` model and cache).

The numbers are :mod:`trecs_eval.metrics.trace_local_clip`'s. Gold tags, where the items have
them, give the per-class breakdown; without them (``trecs-eval metrics --narratives``) the
metric is the same number with no breakdown. Each item's per-utterance scores go
to ``samples.parquet`` as JSON text in ``trace_local_clip_utterances`` (``{"index": [...],
"local": [...], "contrast": [...]}``, utterance indices into ``timed_caption``; a text column,
so score views that read numeric columns skip it), for the report's crop gallery.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trecs_eval.data.trace_regions import MIN_BOX_SIDE
from trecs_eval.errors import ConfigError
from trecs_eval.metrics import trace_local_clip as tlc
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, DEFAULT_N_RESAMPLES
from trecs_eval.metrics.by_class import DEFAULT_TOP_CLASSES
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricOutput

SPACE = "clip_crops"
_PARAMS = {"n_resamples": DEFAULT_N_RESAMPLES, "alpha": DEFAULT_ALPHA, "min_box_side": MIN_BOX_SIDE,
           "top_classes": DEFAULT_TOP_CLASSES}
_INTERVAL = "seeded percentile bootstrap of the mean over narratives, resampling images"


def _regions(inputs: MetricInputs, min_side: float) -> list[tlc.NarrativeRegions]:
    if len(inputs.narratives) != len(inputs.item_ids):
        raise ConfigError("trace-local CLIP needs the narratives (utterances and traces) of the images",
                          hint="trecs-eval metrics: pass --narratives FILE.jsonl")
    gold = {it.item_id: it.gold_tags for it in inputs.items}
    return [tlc.narrative_regions(n, gold.get(i), min_side)
            for i, n in zip(inputs.item_ids, inputs.narratives, strict=True)]


def utterance_scores(source: Any, regions: Sequence[tlc.NarrativeRegions]
                     ) -> tuple[list[int], list[str], np.ndarray, np.ndarray]:
    """(owner row, class, local score, contrast score) of every scored utterance of ``regions``
    (rows of ``source``'s images), from one batch of crops and one batch of texts."""
    owner = [row for row, r in enumerate(regions) for _ in r.scored]
    if not owner:
        return [], [], np.zeros(0), np.zeros(0)
    texts = [t for r in regions for t in r.texts]
    offsets = np.cumsum([0] + [len(r.texts) for r in regions])
    crops = source.crops(owner, [u.box for r in regions for u in r.scored])
    text_emb = source.texts(texts)
    own = [int(offsets[row] + k) for row, r in enumerate(regions) for k in r.text_of]
    candidates = [list(range(offsets[row], offsets[row + 1])) for row in owner]
    local = tlc.local_scores(crops, text_emb[own])
    contrast = tlc.contrast_scores(crops, text_emb, own, candidates)
    labels = [u.label for r in regions for u in r.scored]
    return owner, labels, local, contrast


def _column(item_ids: Sequence[str], regions: Sequence[tlc.NarrativeRegions], owner: Sequence[int],
            local: np.ndarray, contrast: np.ndarray) -> dict[str, str]:
    def num(v: float) -> float | None:
        return None if math.isnan(v) else round(float(v), 6)

    out = {}
    k = 0
    for row, (item_id, r) in enumerate(zip(item_ids, regions, strict=True)):
        n = len(r.scored)
        assert all(o == row for o in owner[k:k + n])
        out[item_id] = json.dumps({"index": [u.index for u in r.scored],
                                   "local": [num(v) for v in local[k:k + n]],
                                   "contrast": [num(v) for v in contrast[k:k + n]]})
        k += n
    return out


def _compute(name: str) -> Any:
    def compute(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricOutput:
        regions = _regions(inputs, float(params["min_box_side"]))
        owner, labels, local, contrast = utterance_scores(inputs.features[SPACE], regions)
        counts = {"n_utterances": sum(r.n_utterances for r in regions),
                  "n_utterances_without_points": sum(r.n_without_points for r in regions),
                  "n_utterances_without_content_word": sum(r.n_without_content for r in regions),
                  "n_boxes_widened": sum(r.widened for r in regions)}
        values = local if name == tlc.LOCAL else contrast
        if name == tlc.CONTRAST:
            counts["n_utterances_without_other_utterance"] = int(np.isnan(contrast).sum())
        result = tlc.compute_trace_local_clip(
            name, inputs.item_ids, [n.image_id for n in inputs.narratives],
            tlc.UtteranceScores(tuple(owner), tuple(labels), values), counts,
            n_resamples=params["n_resamples"], seed=inputs.seed, alpha=params["alpha"],
            extractor=dict(inputs.identities.get(SPACE, {})), system=inputs.system,
            top_classes=params["top_classes"], min_box_side=params["min_box_side"])
        column = _column(inputs.item_ids, regions, owner, local, contrast) if name == tlc.LOCAL else {}
        return MetricOutput(result, {tlc.UTTERANCES_COLUMN: column} if column else {})

    compute.__name__ = f"compute_{name}"
    return compute


def _info(name: str, display_name: str, order: int) -> MetricInfo:
    base = tlc.INFO[name]
    return MetricInfo(base.name, base.higher_is_better, base.unit, base.description,
                      display_name=display_name, scope="item", features=(SPACE,), interval=_INTERVAL,
                      column_order=order, estimator="per_item_mean", missing="exclude",
                      family="trace adherence")


# "text": the narratives (their utterances and traces) must come with the images; `trecs-eval
# metrics` then asks for --narratives. The narrative embeddings this also makes are CLIPScore's.
_NEEDS = frozenset({"text"})
TRACE_LOCAL_CLIP = Metric(_info(tlc.LOCAL, "Trace-local CLIP", 55), _compute(tlc.LOCAL), params=dict(_PARAMS),
                          needs=_NEEDS)
TRACE_LOCAL_CLIP_CONTRAST = Metric(_info(tlc.CONTRAST, "Trace-local CLIP contrast", 56),
                                   _compute(tlc.CONTRAST), params=dict(_PARAMS), needs=_NEEDS)

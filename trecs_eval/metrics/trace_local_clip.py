"""Trace-local CLIP: is the thing an utterance names drawn where the speaker pointed while saying it?

For narrative ``j`` and each of its utterances ``u`` that has trace points and a content word:

* ``B_u``: the region its points cover, :func:`trecs_eval.data.trace_regions.trace_box` (the grown
  box the compose step places masks on and GLIGEN gets as a grounding box, minimum side
  ``min_box_side``), cropped from the generated image (:func:`~trecs_eval.data.trace_regions.box_pixels`);
* ``c_u``: the CLIP embedding of that crop (the run's CLIP, CLIPScore's preprocessing and cache);
  ``t_u``: the CLIP embedding of the utterance's text;
* ``s(c, t) = 100 * max(cos(c, t), 0)`` (CLIPScore's scale, so the two read alike).

Two per-utterance scores, each averaged over the narrative's scored utterances and then over
narratives:

* ``trace_local_clip``: ``l_u = s(c_u, t_u)``;
* ``trace_local_clip_contrast``: ``d_u = s(c_u, t_u) - max_{v != u} s(c_u, t_v)`` over the narrative's
  other utterances with a content word: is the right thing *here* rather than elsewhere? An image
  that paints every object everywhere scores high ``l_u`` but ``d_u`` near 0. Range -100..100.

Utterances without trace points or without a content word (``FILLER_WORDS``: "in this picture we
can see") are not scored and are counted; a contrast needs a second content utterance. A narrative
with no scored utterance is left out of the mean and counted (``missing``: exclude). The 95 %
interval is a seeded percentile bootstrap of the mean over narratives that resamples whole images
(narratives sharing an image id are one cluster). ``by_class`` in ``params`` breaks ``l_u`` /
``d_u`` down by the utterance's gold tag (the most frequent gold tag of its content words), for
the classes with the most utterances.

>>> crops = np.array([[1.0, 0.0], [0.0, 1.0]]); texts = np.array([[1.0, 0.0], [0.6, 0.8]])
>>> local_scores(crops, texts).round(3).tolist()
[100.0, 80.0]
>>> contrast_scores(crops, texts, [0, 1], [[0, 1], [0, 1]]).round(3).tolist()
[40.0, 80.0]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trecs_eval.data.narratives import Narrative, align_utterances
from trecs_eval.data.trace_regions import MIN_BOX_SIDE, Box, trace_box
from trecs_eval.metrics.bootstrap import DEFAULT_ALPHA, DEFAULT_N_RESAMPLES, bootstrap_mean_ci
from trecs_eval.metrics.by_class import class_breakdown
from trecs_eval.metrics.intervals import cluster_codes, containment_warning
from trecs_eval.metrics.types import MetricInfo, MetricResult

SCALE = 100.0  # CLIPScore's (torchmetrics) scale
LOCAL, CONTRAST = "trace_local_clip", "trace_local_clip_contrast"
UTTERANCES_COLUMN = "trace_local_clip_utterances"  # samples.parquet: per-utterance scores, JSON text
# Words that name no drawable thing: articles, pronouns, prepositions, conjunctions, the copula and
# Localized Narratives' stock openings ("in this picture we can see"). Position words are here too:
# they say where, which the trace already says.
FILLER_WORDS = frozenset(str.split("""
a an the this that these those it its it's they them their there here we i you he she his her
is are was were be being been am can could may might will would also and or but so then too as
of in on at to from by with into onto over under above below behind beside besides near next
front back top bottom left right side middle center centre background foreground corner
picture image photo see seen visible which who whose where what some another other few many
one two three all both each very just only
"""))
INFO = {
    LOCAL: MetricInfo(LOCAL, True, "100*max(cos,0)",
                      "CLIP score of the crop where each utterance's trace points against the utterance, "
                      "mean over utterances, then over narratives"),
    CONTRAST: MetricInfo(CONTRAST, True, "100*max(cos,0) difference",
                         "trace-local CLIP score of each utterance's crop minus the best score of the same "
                         "crop against another utterance of the narrative"),
}


@dataclass(frozen=True)
class UtteranceRegion:
    """A scored utterance: its index in ``timed_caption``, text, normalized box and gold class."""

    index: int
    text: str
    box: Box
    label: str = ""


@dataclass(frozen=True)
class NarrativeRegions:
    """What one narrative gives the metric: scored utterances, distractor texts, skip counts.

    ``texts`` are every utterance with a content word (the contrast's candidates), ``scored[k]``
    has ``texts[text_of[k]]`` as its own text.
    """

    scored: tuple[UtteranceRegion, ...] = ()
    texts: tuple[str, ...] = ()
    text_of: tuple[int, ...] = ()
    n_utterances: int = 0
    n_without_points: int = 0
    n_without_content: int = 0
    widened: int = field(default=0, compare=False)


def content_words(words: Sequence[str]) -> list[str]:
    """The words of ``words`` not in :data:`FILLER_WORDS`."""
    return [w for w in words if w not in FILLER_WORDS]


def _word_tags(narrative: Narrative, gold_tags: Sequence[str] | None) -> list[list[str]]:
    """Gold tag of each word of each utterance ("" where unknown): positions when the utterances'
    words are the narrative's words, else an in-order greedy match (as ``points_for_words``)."""
    utterances = [u.words for u in align_utterances(narrative)]
    if gold_tags is None:
        return [[""] * len(w) for w in utterances]
    words = narrative.words
    flat = [w for ws in utterances for w in ws]
    if flat == words and len(gold_tags) == len(words):
        tags = list(gold_tags)
    else:
        tags, j = [], 0
        for word in flat:
            k = next((k for k in range(j, len(words)) if words[k] == word), None)
            tags.append("" if k is None or k >= len(gold_tags) else gold_tags[k])
            j = j if k is None else k + 1
    out, start = [], 0
    for ws in utterances:
        out.append(tags[start:start + len(ws)])
        start += len(ws)
    return out


def utterance_class(words: Sequence[str], tags: Sequence[str]) -> str:
    """The most frequent non-empty tag of the content words (ties: the first one met); "" if none."""
    counts = Counter(t for w, t in zip(words, tags, strict=True) if w not in FILLER_WORDS and t)
    return max(counts, key=lambda t: (counts[t], -tags.index(t))) if counts else ""


def narrative_regions(narrative: Narrative, gold_tags: Sequence[str] | None = None,
                      min_side: float = MIN_BOX_SIDE) -> NarrativeRegions:
    """The scored utterances of one narrative (module doc), their boxes and what was skipped."""
    aligned = align_utterances(narrative)
    tags = _word_tags(narrative, gold_tags)
    scored, texts, text_of = [], [], []
    no_points = no_content = widened = 0
    for index, (utt, spoken, utt_tags) in enumerate(zip(aligned, narrative.timed_caption, tags, strict=True)):
        if not content_words(utt.words):
            no_content += 1
            continue
        texts.append(spoken.utterance.strip())
        if len(utt.points) == 0:
            no_points += 1
            continue
        box, was_widened = trace_box(utt.points, min_side)
        widened += was_widened
        scored.append(UtteranceRegion(index, texts[-1], box, utterance_class(utt.words, utt_tags)))
        text_of.append(len(texts) - 1)
    return NarrativeRegions(tuple(scored), tuple(texts), tuple(text_of), len(aligned), no_points,
                            no_content, widened)


def _unit(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def local_scores(crop_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
    """(U,) ``100 * max(cos(c_u, t_u), 0)`` of aligned rows (float64, renormalized)."""
    cos = np.einsum("nd,nd->n", _unit(crop_embeddings), _unit(text_embeddings))
    return SCALE * np.maximum(cos, 0.0)


def contrast_scores(crop_embeddings: np.ndarray, text_embeddings: np.ndarray, own_text: Sequence[int],
                    candidates: Sequence[Sequence[int]]) -> np.ndarray:
    """(U,) ``s(c_u, t_own(u)) - max_{v in candidates[u], v != own(u)} s(c_u, t_v)``; NaN when
    ``candidates[u]`` holds no other text. ``text_embeddings`` rows are indexed by ``own_text`` and
    ``candidates`` (one row per distinct utterance text slot)."""
    crops, texts = _unit(crop_embeddings), _unit(text_embeddings)
    out = np.full(len(crops), np.nan)
    for u, (own, cands) in enumerate(zip(own_text, candidates, strict=True)):
        others = [v for v in cands if v != own]
        if others:
            scores = SCALE * np.maximum(texts[[own, *others]] @ crops[u], 0.0)
            out[u] = scores[0] - scores[1:].max()
    return out


def narrative_means(values: np.ndarray, owner: Sequence[int], n_narratives: int) -> np.ndarray:
    """(n_narratives,) mean of the finite ``values`` of each narrative (``owner[u]``); NaN if none."""
    sums, counts = np.zeros(n_narratives), np.zeros(n_narratives)
    finite = np.isfinite(values)
    np.add.at(sums, np.asarray(owner, dtype=np.int64)[finite], values[finite])
    np.add.at(counts, np.asarray(owner, dtype=np.int64)[finite], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


@dataclass(frozen=True)
class UtteranceScores:
    """Per scored utterance: its narrative (``owner``, a row of the item list), image cluster, class
    and value (NaN: not scored, e.g. a contrast without another utterance)."""

    owner: tuple[int, ...]
    labels: tuple[str, ...]
    values: np.ndarray


def compute_trace_local_clip(
    name: str, item_ids: Sequence[str], clusters: Sequence[str], scores: UtteranceScores,
    counts: dict[str, int], n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = 0,
    alpha: float = DEFAULT_ALPHA, extractor: dict[str, Any] | None = None, system: str = "",
    top_classes: int = 20, **params: Any,
) -> MetricResult:
    """The mean over narratives of the per-narrative mean utterance score, its clustered interval,
    skip counts and the per-class breakdown (module doc). ``params`` are recorded as given."""
    ids = [str(i) for i in item_ids]
    per_narrative = narrative_means(scores.values, scores.owner, len(ids))
    kept = np.flatnonzero(np.isfinite(per_narrative))
    extractor = dict(extractor or {})
    record = {"n_resamples": n_resamples, "alpha": alpha, "estimator": "mean over narratives of the "
              "mean over scored utterances", **params, **counts,
              "n_narratives_without_scored_utterance": int(len(ids) - kept.size)}
    if kept.size == 0:
        return MetricResult(name, math.nan, True, 0, system=system, extractor=extractor, seed=seed,
                            status="failed", params=record,
                            warnings=(f"{name}: no narrative has an utterance with trace points and a "
                                      "content word; nothing to score",))
    kept_clusters = [clusters[i] for i in kept]
    mean, low, high = bootstrap_mean_ci(per_narrative[kept], n_resamples=n_resamples, seed=seed, alpha=alpha,
                                        clusters=kept_clusters)
    finite = np.isfinite(scores.values)
    utter_clusters = [clusters[o] for o in scores.owner]
    record["n_clusters"] = cluster_codes(kept_clusters, kept.size)[1]
    record["n_scored_utterances"] = int(finite.sum())
    record["by_class"] = class_breakdown(
        [lab for lab, f in zip(scores.labels, finite, strict=True) if f], scores.values[finite],
        [c for c, f in zip(utter_clusters, finite, strict=True) if f], top=top_classes,
        n_resamples=n_resamples, seed=seed, alpha=alpha)
    warnings = list(containment_warning(name, mean, low, high))
    if kept.size < len(ids):
        warnings.append(f"{name}: {len(ids) - kept.size} of {len(ids)} narratives have no scored utterance "
                        "and are left out of the mean")
    values = per_narrative[kept]
    return MetricResult(
        name=name, value=mean, higher_is_better=True, n=int(kept.size), ci_low=low, ci_high=high,
        std=float(values.std(ddof=1)) if kept.size > 1 else math.nan, system=system, extractor=extractor,
        seed=seed, status="uncalibrated" if extractor.get("uncalibrated") else "ok", warnings=tuple(warnings),
        params=record, per_sample={ids[i]: float(per_narrative[i]) for i in kept})

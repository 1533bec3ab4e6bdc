"""``gligen``: diffusers' ``StableDiffusionGLIGENPipeline`` grounded on the narrative's mouse trace.

The trace-aware direct baseline: no retrieval, no canvas; the trace reaches the image only as
GLIGEN boxes. Per item:

1. **Tags.** Predicted by the project's tagger (``tags = "predicted"``, trained on the train
   folder's TReCS label files or loaded from ``tagger_checkpoint``) or gold (``tags = "oracle"``).
2. **Spans.** :func:`reference_pipeline.compose.trace_sequences`: maximal runs of words with the
   same COCO-Stuff label, each with the union of its words' trace points (the project's
   word↔trace alignment, :func:`trecs_eval.metrics.label_canvas.points_for_words`).
3. **Phrase.** ``phrase = "words"``: the span's words (cut to CLIP's 77 tokens); ``"label"``: its
   label name with ``-other`` dropped and hyphens as spaces (``sky-other`` -> ``sky``).
4. **Box.** :func:`trecs_eval.data.trace_regions.trace_box` of the span's points (the bbox of
   their hull, enlarged ``TRACE_BOX_GROWTH`` = 1.4× about its centre, as the compose step places
   masks), clipped to [0, 1]. A span without trace points gets no box.
5. **Tiny boxes.** A side shorter than ``min_box_side`` (default ``MIN_BOX_SIDE`` = 1/16 of the
   image, 32 px at 512) is widened to it about the centre, then shifted back inside the image:
   a one-point scribble still names a place, but a 1-pixel box gives GLIGEN nothing to attend to.
6. **Many boxes.** GLIGEN's pipeline takes at most ``GLIGEN_MAX_BOXES`` = 30 (it would silently
   keep the first 30); when there are more, the ``max_boxes`` largest boxes (area; ties in
   narrative order) are kept, in narrative order. Counted in :meth:`GligenGenerator.describe`.
7. **No box** (no tagged span with points): the item is generated from its prompt alone
   (GLIGEN's grounding switched off with ``gligen_scheduled_sampling_beta = 0``).

The prompt is the caption under the ``text_policy`` of :mod:`baselines._diffusion`. GLIGEN's
pipeline conditions one set of boxes per call, so items are generated one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from baselines._diffusion import fit_words, item_generators
from baselines.diffusers_t2i import CHOICES, DEFAULTS, DiffusionBase, to_generations
from reference_pipeline.compose import trace_sequences
from trecs_eval.data.coco_stuff import ID_TO_NAME
from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.trace_regions import MIN_BOX_SIDE, Box, trace_box
from trecs_eval.errors import ConfigError
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext
from trecs_eval.metrics.label_canvas import points_for_words

GLIGEN_MAX_BOXES = 30  # diffusers' StableDiffusionGLIGENPipeline: max_objs
GLIGEN_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in DEFAULTS.items() if k != "batched"},  # GLIGEN conditions one item per call
    "tags": "predicted", "tagger": "fill", "tagger_seed": 0, "tagger_checkpoint": "", "phrase": "words",
    "gligen_beta": 0.3, "max_boxes": GLIGEN_MAX_BOXES, "min_box_side": MIN_BOX_SIDE,
}
GLIGEN_CHOICES: dict[str, tuple[Any, ...]] = {**CHOICES, "tags": ("predicted", "oracle"),
                                              "phrase": ("words", "label")}


@dataclass(frozen=True)
class Grounding:
    """The phrases and boxes of one item, and what the box policy did to them."""

    phrases: tuple[str, ...]
    boxes: tuple[Box, ...]
    n_spans: int = 0
    n_without_points: int = 0
    n_widened: int = 0
    n_dropped: int = 0


def label_phrase(label: int) -> str:
    """``sky-other`` -> ``sky``, ``wall-concrete`` -> ``wall concrete``."""
    return ID_TO_NAME[label].replace("-other", "").replace("-", " ")


def keep_largest(boxes: Sequence[Box], limit: int) -> list[int]:
    """Indices of the ``limit`` largest boxes (ties: earlier first), in their original order."""
    if len(boxes) <= limit:
        return list(range(len(boxes)))
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: (-areas[i], i))
    return sorted(order[:limit])


def grounding(words: Sequence[str], tags: Sequence[str], points: Sequence[np.ndarray], phrase: str,
              max_boxes: int, min_side: float) -> Grounding:
    """The phrases and boxes of the module doc for one item."""
    phrases: list[str] = []
    boxes: list[Box] = []
    sequences = trace_sequences(tags, points)
    widened = without = 0
    for seq in sequences:
        if len(seq.points) == 0:
            without += 1
            continue
        box, was_widened = trace_box(seq.points, min_side)
        widened += was_widened
        boxes.append(box)
        phrases.append(" ".join(words[seq.start:seq.end]) if phrase == "words" else label_phrase(seq.label))
    keep = keep_largest(boxes, max_boxes)
    return Grounding(tuple(phrases[i] for i in keep), tuple(boxes[i] for i in keep), len(sequences),
                     without, widened, len(boxes) - len(keep))


class GligenGenerator(DiffusionBase):
    """Params: those of ``diffusers`` plus ``tags``, ``tagger``, ``tagger_seed``, ``tagger_checkpoint``,
    ``phrase``, ``gligen_beta`` (fraction of steps with grounding), ``max_boxes``, ``min_box_side``."""

    name: ClassVar[str] = "gligen"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=True, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        super().__init__(params, context, GLIGEN_DEFAULTS, GLIGEN_CHOICES, "StableDiffusionGLIGENPipeline")
        p = self.p
        if not 1 <= p["max_boxes"] <= GLIGEN_MAX_BOXES:
            raise ConfigError(f"gligen: max_boxes must be in 1..{GLIGEN_MAX_BOXES} (GLIGEN's limit), "
                              f"got {p['max_boxes']}")
        if not 0.0 <= p["min_box_side"] <= 1.0 or not 0.0 <= p["gligen_beta"] <= 1.0:
            raise ConfigError("gligen: min_box_side and gligen_beta must be in [0, 1]")
        from reference_pipeline.generator import make_tagger

        self.tagger = (make_tagger(p["tagger"], p["tagger_seed"], p["tagger_checkpoint"] or None, context,
                                   "gligen") if p["tags"] == "predicted" else None)
        self._groundings: dict[str, Grounding] = {}

    def grounding(self, item: EvalItem) -> Grounding:
        """Phrases and boxes for ``item`` (computed once per item)."""
        if item.item_id not in self._groundings:
            from reference_pipeline.generator import item_tags

            words = item.narrative.words
            tags = item_tags(item, self.p["tags"], self.tagger)
            self._groundings[item.item_id] = grounding(
                words, tags, points_for_words(item.narrative, words), self.p["phrase"], self.p["max_boxes"],
                self.p["min_box_side"])
        return self._groundings[item.item_id]

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        out: list[Generation] = []
        for item, rng in zip(items, item_generators(items, seed, self.device), strict=True):
            g = self.grounding(item)
            boxes = [list(b) for b in g.boxes] or [[0.0, 0.0, 1.0, 1.0]]
            phrases = [fit_words(self.pipe.tokenizer, ph) for ph in g.phrases] or [""]
            result = self.pipe(self.prompt(item), num_inference_steps=self.p["steps"],
                               guidance_scale=self.p["guidance_scale"], generator=rng,
                               gligen_phrases=phrases, gligen_boxes=boxes,
                               gligen_scheduled_sampling_beta=self.p["gligen_beta"] if g.boxes else 0.0,
                               **self.size_kwargs())
            out.extend(to_generations(result.images))
        return out

    def describe(self, items: Sequence[EvalItem]) -> dict[str, Any]:
        info = super().describe(items)
        gs = [self.grounding(it) for it in items]
        info.update({
            "tags": self.p["tags"], "phrase_policy": self.p["phrase"], "gligen_beta": self.p["gligen_beta"],
            "box_policy": f"grown trace hull bbox; sides < {self.p['min_box_side']} widened; "
                          f"at most {self.p['max_boxes']} boxes (largest kept)",
            "n_boxes": sum(len(g.boxes) for g in gs),
            "n_items_without_boxes": sum(not g.boxes for g in gs),
            "n_spans_without_points": sum(g.n_without_points for g in gs),
            "n_boxes_widened": sum(g.n_widened for g in gs),
            "n_boxes_dropped": sum(g.n_dropped for g in gs),
        })
        return info

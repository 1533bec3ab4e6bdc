"""Evaluation set: narratives joined with reference images, gold tags and gold segmentation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trecs_eval.data.narratives import Narrative


@dataclass(frozen=True)
class EvalItem:
    """One evaluation item: a narrative plus whatever ground truth exists for it.

    ``gold_tags`` is one COCO-Stuff label name per word of ``narrative.words`` (TReCS format);
    ``gold_segmentation`` is a PNG of COCO-Stuff label ids per pixel.
    """

    narrative: Narrative
    reference_image: Path | None = None
    gold_tags: tuple[str, ...] | None = None
    gold_segmentation: Path | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def item_id(self) -> str:
        return self.narrative.item_id

"""``real``: the reference images themselves — an upper bound and a sanity check.

Against a *disjoint* real split (``reference.kind = "images"``) its FID is the floor a
generator can hope for; against the evaluation set's own images it is ~0 by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from baselines._common import load_rgb, read_params
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import InputError
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext
from trecs_eval.generation.runner import ItemCheck


class RealGenerator:
    """Returns each item's reference image, decoded to RGB; ``resize = true`` resizes it to
    ``image_size`` (off by default: the pixels stay exactly the dataset's)."""

    name: ClassVar[str] = "real"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=False, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        p = read_params(self.name, params, {"resize": False, "image_size": context.image_size})
        self.size: int | None = p["image_size"] if p["resize"] else None

    def check_items(self, items: Sequence[EvalItem]) -> ItemCheck:
        missing = tuple(it.item_id for it in items
                        if it.reference_image is None or not it.reference_image.is_file())
        notes = (f"{len(missing)} item(s) have no reference image",) if missing else ()
        return ItemCheck(missing=missing, notes=notes)

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        out = []
        for it in items:
            if it.reference_image is None:
                raise InputError(f"item {it.item_id} has no reference image", field="reference_image")
            out.append(Generation(load_rgb(it.reference_image, self.size)))
        return out

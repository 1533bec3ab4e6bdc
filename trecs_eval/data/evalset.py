"""Evaluation set: narratives joined with reference images, gold tags and gold segmentation."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from trecs_eval.data.coco_stuff import read_label_map
from trecs_eval.data.localized_narratives import OnError, SkippedLine, read_narratives
from trecs_eval.data.narratives import Narrative
from trecs_eval.data.sequence_labels import (
    SequenceLabels,
    read_sequence_labels,
    read_sequence_labels_at,
)
from trecs_eval.errors import ConfigError, InputError, suggest

log = logging.getLogger(__name__)


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


Naming = Literal["coco", "openimages", "flat"]
OnMissing = Literal["report", "raise"]
NAMINGS: tuple[str, ...] = ("coco", "openimages", "flat")
# extra["segmentation_format"]: "ids" = pixel value is the COCO-Stuff id; "stuffthingmaps" =
# the released COCO-Stuff PNGs, pixel value id - 1 (see coco_stuff.read_label_map).
SEGMENTATION_IDS, SEGMENTATION_STUFFTHINGMAPS = "ids", "stuffthingmaps"


@dataclass(frozen=True)
class MissingEntry:
    """One piece of ground truth an item lacks: what, and where it was looked for (or why)."""

    item_id: str
    what: str  # "reference_image", "gold_segmentation" or "gold_tags"
    detail: str


@dataclass(frozen=True)
class MissingReport:
    """Every missing reference image / gold segmentation / gold tag line, per item."""

    entries: tuple[MissingEntry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.entries:
            out[entry.what] = out.get(entry.what, 0) + 1
        return out

    def item_ids(self, what: str) -> list[str]:
        return [e.item_id for e in self.entries if e.what == what]

    def format(self, max_lines: int = 10) -> str:
        """Human-readable summary: counts, then the first ``max_lines`` entries."""
        if not self.entries:
            return "nothing missing"
        counts = ", ".join(f"{n} {what}" for what, n in sorted(self.counts().items()))
        lines = [f"missing: {counts}"]
        lines += [f"  {e.item_id}: {e.what} ({e.detail})" for e in self.entries[:max_lines]]
        if len(self.entries) > max_lines:
            lines.append(f"  ... and {len(self.entries) - max_lines} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class EvalSet:
    """Items in narrative-file order. Items lacking ground truth are kept (field None) and listed
    in ``missing``; ``skipped`` lists malformed narrative lines (only with on_error="skip")."""

    name: str
    items: tuple[EvalItem, ...]
    missing: MissingReport = MissingReport()
    skipped: tuple[SkippedLine, ...] = ()

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[EvalItem]:
        return iter(self.items)

    def by_id(self) -> dict[str, EvalItem]:
        return {item.item_id: item for item in self.items}

    def with_reference_images(self) -> EvalSet:
        """Only items that have a reference image (the missing report still lists the rest)."""
        kept = tuple(i for i in self.items if i.reference_image is not None)
        return EvalSet(self.name, kept, self.missing, self.skipped)


def reference_image_path(image_root: Path, narrative: Narrative, naming: Naming) -> Path:
    """Where a narrative's reference image lives under ``image_root``.

    coco: ``val2017/{image_id:012d}.jpg`` (or ``{image_id:012d}.jpg`` directly under the root
    when there is no ``val2017`` folder); openimages: ``{image_id}.jpg``; flat: ``{item_id}.png``.
    """
    if naming == "coco":
        if not narrative.image_id.isdigit():
            raise InputError(f"COCO image ids are integers, got {narrative.image_id!r}",
                             field="image_id", hint="use naming='openimages' or 'flat'")
        name = f"{int(narrative.image_id):012d}.jpg"
        sub = image_root / "val2017"
        return sub / name if sub.is_dir() else image_root / name
    if naming == "openimages":
        return image_root / f"{narrative.image_id}.jpg"
    if naming == "flat":
        return image_root / f"{narrative.item_id}.png"
    raise ConfigError(f"unknown image naming {naming!r}{suggest(naming, NAMINGS)}")


def _segmentation_path(root: Path, narrative: Narrative, naming: Naming) -> Path:
    """Gold label map: the image's name with ``.png`` (COCO-Stuff's stuffthingmaps layout)."""
    return reference_image_path(root, narrative, naming).with_suffix(".png")


def _gold_tags(
    narrative: Narrative, labels: SequenceLabels, index: dict[str, int]
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None, str]:
    """(tags, words, problem) for one narrative from TReCS files; problem is "" when fine."""
    line = index.get(narrative.item_id)
    if line is None:
        return None, None, f"no line for this id in {labels.split}.ids.txt"
    words = labels.words[line]
    if labels.tags is None:
        return None, words, f"{labels.split} has no tags file"
    n_caption = len(narrative.words)
    if len(words) != n_caption:  # EvalItem promises one tag per word of narrative.words
        return None, words, f"{len(words)} TReCS words but the caption tokenizes to {n_caption}"
    return labels.tags[line], words, ""


def build_evalset(
    narratives_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str],
    *,
    naming: Naming = "coco",
    sequence_labels: SequenceLabels | str | os.PathLike[str] | None = None,
    segmentation_root: str | os.PathLike[str] | None = None,
    segmentation_format: str = SEGMENTATION_STUFFTHINGMAPS,
    on_missing: OnMissing = "report",
    on_error: OnError = "raise",
    name: str | None = None,
) -> EvalSet:
    """Join narratives with reference images, optional gold tags and gold segmentation.

    Gold tags come from TReCS sequence labels matched by item id; ``extra["trecs_words"]``
    holds the TReCS word line they belong to (one tag per TReCS word). Missing ground truth is
    kept as None and listed in ``EvalSet.missing`` (and logged); ``on_missing="raise"`` raises
    InputError listing it instead.
    """
    if naming not in NAMINGS:
        raise ConfigError(f"unknown image naming {naming!r}{suggest(naming, NAMINGS)}")
    if on_missing not in ("report", "raise"):
        raise ConfigError(f"on_missing must be 'report' or 'raise', got {on_missing!r}")
    labels = (read_sequence_labels_at(sequence_labels)
              if isinstance(sequence_labels, (str, os.PathLike)) else sequence_labels)
    read = read_narratives(narratives_path, on_error=on_error)
    root = Path(image_root)
    seg_root = Path(segmentation_root) if segmentation_root is not None else None
    index = labels.index() if labels is not None else {}
    items, missing = [], []
    for narrative in read.narratives:
        extra: dict[str, str] = {}
        image = reference_image_path(root, narrative, naming)
        if not image.is_file():
            missing.append(MissingEntry(narrative.item_id, "reference_image", str(image)))
        seg = _segmentation_path(seg_root, narrative, naming) if seg_root else None
        if seg is not None:
            extra["segmentation_format"] = segmentation_format
            if not seg.is_file():
                missing.append(MissingEntry(narrative.item_id, "gold_segmentation", str(seg)))
        tags = None
        if labels is not None:
            tags, words, problem = _gold_tags(narrative, labels, index)
            if words is not None:
                extra["trecs_words"] = " ".join(words)
            if problem:
                missing.append(MissingEntry(narrative.item_id, "gold_tags", problem))
        items.append(EvalItem(narrative, image if image.is_file() else None, tags,
                              seg if seg is not None and seg.is_file() else None, extra))
    return _finish(name or Path(narratives_path).name, items, missing, read.skipped, on_missing)


def _finish(name: str, items: list[EvalItem], missing: list[MissingEntry],
            skipped: list[SkippedLine], on_missing: OnMissing) -> EvalSet:
    report = MissingReport(tuple(missing))
    if report and on_missing == "raise":
        first = report.entries[0]
        counts = ", ".join(f"{n} {what}" for what, n in sorted(report.counts().items()))
        raise InputError(f"evaluation set {name!r} is incomplete: missing {counts} (first: "
                         f"{first.item_id} {first.what}: {first.detail})",
                         hint="pass on_missing='report' to keep the items and list what is missing")
    if report:
        log.warning("evaluation set %s: %s", name, report.format(5))
    return EvalSet(name, tuple(items), report, tuple(skipped))


def load_toyworld(directory: str | os.PathLike[str], *, shifted: bool = False,
                  on_missing: OnMissing = "report") -> EvalSet:
    """A toyworld folder as an EvalSet (see ``trecs_eval.data.toyworld`` for the layout).

    Reference images are ``images/{item_id}.png`` (``images_shifted/`` with ``shifted=True``);
    gold tags come from ``sequence_labels/toyworld.*``; gold segmentation from
    ``segmentation/{item_id}.png`` (pixel value = COCO-Stuff id). ``extra`` carries
    ``instances`` and ``shifted_image`` paths when those files exist.
    """
    root = Path(directory)
    if not (root / "narratives.jsonl").is_file():
        raise InputError("not a toyworld folder (no narratives.jsonl)", str(root),
                         hint="create one with `trecs-eval data toyworld --out DIR`")
    evalset = build_evalset(
        root / "narratives.jsonl", root / ("images_shifted" if shifted else "images"),
        naming="flat", sequence_labels=read_sequence_labels(root / "sequence_labels", "toyworld"),
        segmentation_root=root / "segmentation", segmentation_format=SEGMENTATION_IDS,
        on_missing=on_missing, name=root.name,
    )
    items = []
    for item in evalset.items:
        extra = dict(item.extra)
        for key, folder in (("instances", "instances"), ("shifted_image", "images_shifted")):
            path = root / folder / f"{item.item_id}.png"
            if path.is_file():
                extra[key] = str(path)
        items.append(replace(item, extra=extra))
    return replace(evalset, items=tuple(items))


def read_gold_segmentation(item: EvalItem) -> np.ndarray:
    """The item's gold label map as (H, W) uint8 COCO-Stuff ids; InputError when it has none."""
    if item.gold_segmentation is None:
        raise InputError(f"item {item.item_id} has no gold segmentation")
    zero_based = item.extra.get("segmentation_format") == SEGMENTATION_STUFFTHINGMAPS
    return read_label_map(item.gold_segmentation, zero_based=zero_based)

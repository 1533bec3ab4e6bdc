"""The steps of ``data prepare`` (see :mod:`trecs_eval.data.prepare` for the layout they write).

Each ``*_steps`` function returns tuples ``(key, title, inputs, outputs, options, run, hint)``:
``run()`` does the work (atomic outputs) and returns a small summary dict for ``prepared.json``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from trecs_eval.atomic import atomic_write
from trecs_eval.data.download_sources import OPEN_IMAGES_SPLIT, SOURCES
from trecs_eval.data.evalset import EvalSet, MissingEntry, MissingReport, build_evalset
from trecs_eval.errors import InputError

log = logging.getLogger(__name__)

StepTuple = tuple[str, str, tuple[Path, ...], tuple[Path, ...], tuple[tuple[str, Any], ...],
                  Callable[[], dict[str, Any]], str]


@dataclass(frozen=True)
class Layout:
    """Every path ``download`` writes and ``prepare`` reads or writes, under one root."""

    root: Path

    @property
    def labels(self) -> Path:
        return self.root / "trecs_sequence_labels"

    @property
    def narratives(self) -> Path:
        return self.root / "localized_narratives"

    @property
    def coco(self) -> Path:
        return self.root / "coco"

    @property
    def train(self) -> Path:
        return self.root / "trecs_train"

    @property
    def released(self) -> Path:
        return self.root / "trecs_released"

    @property
    def train_tags(self) -> Path:
        """The released train tags under whichever name was downloaded."""
        for name in ("train_coco.tags.txt", "train_coco.cleaned_tags.txt"):
            if (self.labels / name).is_file():
                return self.labels / name
        return self.labels / "train_coco.tags.txt"


def _hint(*names: str) -> str:
    return f"run `trecs-eval data download {' '.join(names)} --root DIR` first"


# ---------------------------------------------------------------- evaluation sets


def _read_ids(path: Path) -> list[str]:
    """Item ids, one a line (a byte that is not UTF-8 is one line naming the file and line)."""
    from trecs_eval.data.sequence_labels import _read_lines

    return [line.strip() for line in _read_lines(path) if line.strip()]


def restrict(evalset: EvalSet, ids: list[str]) -> EvalSet:
    """The items named by ``ids`` (file order); ids without a narrative join the missing report."""
    by_id = evalset.by_id()
    wanted = set(ids)
    missing = [e for e in evalset.missing.entries if e.item_id in wanted]
    missing += [MissingEntry(i, "narrative", "id of the TReCS split has no narrative") for i in ids
                if i not in by_id]
    items = tuple(by_id[i] for i in dict.fromkeys(ids) if i in by_id)
    return EvalSet(evalset.name, items, MissingReport(tuple(missing)), evalset.skipped)


def checked_subset(full: EvalSet, ids: list[str], ids_file: Path, narratives: Path) -> EvalSet:
    """:func:`restrict` to ``ids``; an empty ids file, or ids that match no narrative at all, are an
    error (not a "ready" benchmark of 0 items that only the missing-items warning hints at)."""
    if not ids:
        raise InputError("holds no item ids", str(ids_file), hint="download it again: "
                         "`trecs-eval data download trecs-labels --force`")
    subset = restrict(full, ids)
    if len(subset) == 0:
        raise InputError(f"none of the {len(ids):,} ids of {ids_file.name} (first {ids[0]!r}) has a "
                         f"narrative among its {len(full):,}", str(narratives),
                         hint="is this the narratives file of another dataset or split?")
    return subset


def write_evalset_summary(out_dir: Path, evalset: EvalSet, n_ids: int) -> dict[str, Any]:
    """``evalset.json`` (counts) and ``missing.txt`` (every missing item, one per line)."""
    summary = {
        "ids in split": n_ids,
        "narratives": len(evalset),
        "reference images": sum(i.reference_image is not None for i in evalset),
        "gold tags": sum(i.gold_tags is not None for i in evalset),
        "gold maps": sum(i.gold_segmentation is not None for i in evalset),
        "missing": len(evalset.missing.entries),
    }
    with atomic_write(out_dir / "missing.txt", "w", encoding="utf-8") as handle:
        handle.writelines(f"{e.item_id}\t{e.what}\t{e.detail}\n" for e in evalset.missing.entries)
    with atomic_write(out_dir / "evalset.json", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    if evalset.missing:
        log.warning("%s: %s (all in %s)", evalset.name, evalset.missing.format(3), out_dir / "missing.txt")
    return summary


def link_released(source: Path, ids: list[str], out: Path, progress: bool) -> dict[str, Any]:
    """Hard-link (else copy) ``{item_id}.png`` found anywhere under ``source`` into ``out``.

    The tar's inner folders do not matter: files are found by name. ``out`` is rebuilt in a
    sibling temp folder and swapped in, so it is complete or absent.
    """
    found: dict[str, Path] = {}
    for path in sorted(source.rglob("*.png")):
        found.setdefault(path.stem, path)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    linked = 0
    for item_id in tqdm(ids, desc=f"link {out.name}", unit="image", disable=not progress, leave=False):
        path = found.get(item_id)
        if path is None:
            continue
        try:
            os.link(path, tmp / f"{item_id}.png")
        except OSError:  # another file system, or no hard links: copy
            shutil.copyfile(path, tmp / f"{item_id}.png")
        linked += 1
    shutil.rmtree(out, ignore_errors=True)  # our own output folder, rebuilt from the tar
    os.replace(tmp, out)
    if linked < len(ids):
        log.warning("%s: %d of %d evaluation items have no released image", out, len(ids) - linked, len(ids))
    return {"released images": linked, "without": len(ids) - linked}


def ln_coco_steps(layout: Layout, progress: bool) -> list[StepTuple]:
    """LN-COCO val: the 8,570 narratives of ``val_coco.ids.txt`` with gold tags and COCO-Stuff maps."""
    out = layout.root / "ln_coco"
    ids_file = layout.labels / "val_coco.ids.txt"
    narratives = layout.narratives / "coco_val_localized_narratives.jsonl"
    images, maps = layout.coco / "val2017", layout.root / "coco_stuff" / "val2017"
    label_files = tuple(layout.labels / f"val_coco.{k}.txt" for k in ("ids", "words", "cleaned_tags"))

    def evalset() -> dict[str, Any]:
        ids = _read_ids(ids_file)
        full = build_evalset(narratives, images, naming="coco", sequence_labels=layout.labels / "val_coco",
                             segmentation_root=maps, name="ln-coco-val")
        return write_evalset_summary(out, checked_subset(full, ids, ids_file, narratives), len(ids))

    return [
        ("ln-coco/evalset", "evaluation set (narratives, images, gold tags, gold maps)",
         (narratives, images, maps, *label_files), (out / "evalset.json", out / "missing.txt"), (), evalset,
         _hint("ln-coco-val", "coco-val2017", "coco-stuff-val2017", "trecs-labels")),
        ("ln-coco/released", "released TReCS images of the evaluation items", (layout.released, ids_file),
         (out / "trecs_released",), (),
         lambda: link_released(layout.released, _read_ids(ids_file), out / "trecs_released", progress),
         _hint("trecs-images")),
    ]


def ln_openimages_steps(layout: Layout, progress: bool) -> list[StepTuple]:
    """LN-OpenImages val: the 1,000 narratives of ``val_oi.ids.txt`` (no gold tags or maps)."""
    out = layout.root / "ln_openimages"
    ids_file = layout.labels / "val_oi.ids.txt"
    narratives = layout.narratives / "open_images_validation_localized_narratives.jsonl"
    images = layout.root / "openimages" / OPEN_IMAGES_SPLIT

    def evalset() -> dict[str, Any]:
        ids = _read_ids(ids_file)
        full = build_evalset(narratives, images, naming="openimages", name="ln-openimages-val")
        return write_evalset_summary(out, checked_subset(full, ids, ids_file, narratives), len(ids))

    return [
        ("ln-openimages/evalset", "evaluation set (narratives, images)", (narratives, images, ids_file),
         (out / "evalset.json", out / "missing.txt"), (), evalset,
         _hint("ln-openimages-val", "trecs-labels", "openimages-val-images")),
        ("ln-openimages/released", "released TReCS images of the evaluation items",
         (layout.released, ids_file), (out / "trecs_released",), (),
         lambda: link_released(layout.released, _read_ids(ids_file), out / "trecs_released", progress),
         _hint("trecs-images")),
    ]


# ---------------------------------------------------------------- shared train assets


def build_mask_bank(layout: Layout, progress: bool) -> dict[str, Any]:
    """The TReCS mask bank of COCO train2017: instance (things) + COCO-Stuff (stuff) masks."""
    from reference_pipeline.bank import build_bank

    annotations = layout.coco / "annotations"
    bank = build_bank([annotations / "instances_train2017.json", annotations / "stuff_train2017.json"],
                      layout.coco / "train2017", layout.train / "bank", progress=progress)
    return {"images": len(bank), "masks": len(bank.masks), "labels": len({m.label for m in bank.masks})}


def write_caption_bank(shards: Path, out: Path, progress: bool) -> dict[str, Any]:
    """LN-COCO train narratives without traces and timings (the `retrieval` baseline needs only
    the caption and ids; this keeps the file ~20x smaller than the shards and fast to read)."""
    from trecs_eval.data.localized_narratives import iter_narratives, narrative_to_dict

    count = 0
    with atomic_write(out, "w", encoding="utf-8") as handle:
        for narrative in tqdm(iter_narratives(shards), desc="caption bank", unit="narrative",
                              disable=not progress, leave=False):
            slim = replace(narrative, timed_caption=(), traces=())
            handle.write(json.dumps(narrative_to_dict(slim), ensure_ascii=False) + "\n")
            count += 1
    return {"narratives": count}


def read_words_and_tags(words_path: Path, tags_path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Line-aligned TReCS words and tags (the ids file is not needed to train); checks that each
    line has as many tags as words."""
    from trecs_eval.data.sequence_labels import _read_lines

    words = [line.split() for line in _read_lines(words_path)]
    tags = [line.split() for line in _read_lines(tags_path)]
    if len(words) != len(tags):
        raise InputError(f"{len(tags)} lines but {words_path.name} has {len(words)}", str(tags_path))
    for number, (w, t) in enumerate(zip(words, tags, strict=True), 1):
        if len(w) != len(t):
            raise InputError(f"{len(t)} tags for {len(w)} words", str(tags_path), number)
    return words, tags


def train_and_save_tagger(layout: Layout, kind: str, seed: int, progress: bool) -> dict[str, Any]:
    from reference_pipeline.tag import save_tagger, train_tagger

    words, tags = read_words_and_tags(layout.labels / "train_coco.words.txt", layout.train_tags)
    tagger = train_tagger(kind, words, tags, seed=seed, progress=progress)  # type: ignore[arg-type]
    save_tagger(tagger, layout.train / "tagger.pt")  # type: ignore[arg-type]
    return {"kind": kind, "narratives": len(words), "labels": len({t for line in tags for t in line})}


def train_steps(layout: Layout, tagger: str, seed: int, progress: bool) -> list[StepTuple]:
    """Mask bank, caption bank and tagger: built once under ``trecs_train/``, shared by both benchmarks."""
    from reference_pipeline.tag import TAGGER_KINDS

    if tagger not in TAGGER_KINDS:
        from trecs_eval.errors import UnknownNameError, suggest

        raise UnknownNameError(f"unknown tagger {tagger!r}{suggest(tagger, TAGGER_KINDS)}")
    annotations = layout.coco / "annotations"
    shards = layout.narratives / "coco_train"
    shard_files = tuple(shards / remote.name for remote in SOURCES["ln-coco-train"].files)
    return [
        ("train/bank", "mask bank (COCO-Stuff train2017: things + stuff)",
         (annotations / "instances_train2017.json", annotations / "stuff_train2017.json"),
         (layout.train / "bank" / "bank.json",), (), lambda: build_mask_bank(layout, progress),
         _hint("coco-annotations", "coco-stuff-annotations")),
        ("train/captions", "caption bank (LN-COCO train narratives)", shard_files,
         (layout.train / "caption_bank.jsonl",), (),
         lambda: write_caption_bank(shards, layout.train / "caption_bank.jsonl", progress),
         _hint("ln-coco-train")),
        ("train/tagger", f"{tagger} tagger on the released train words/tags",
         (layout.labels / "train_coco.words.txt", layout.train_tags), (layout.train / "tagger.pt",),
         (("tagger", tagger), ("seed", seed)), lambda: train_and_save_tagger(layout, tagger, seed, progress),
         _hint("trecs-labels")),
    ]

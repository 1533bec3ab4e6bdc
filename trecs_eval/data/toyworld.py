"""Toyworld: the embedded default dataset, a synthetic world in the exact Localized Narratives format.

``write_toyworld(DIR, n, seed)`` writes, deterministically from the seed (same seed, same bytes)::

    DIR/manifest.json                          format version, n, seed, image size, item ids, paths
    DIR/narratives.jsonl                       Localized Narratives JSONL (dataset_id "toyworld")
    DIR/images/{item_id}.png                   image_size² RGB scenes
    DIR/images_shifted/{item_id}.png           the same scenes, distribution-shifted (if ``shifted``)
    DIR/segmentation/{item_id}.png             uint8 COCO-Stuff label id per pixel (never 0 or 255)
    DIR/instances/{item_id}.png                uint16 instance id per pixel (one per thing / stuff class)
    DIR/sequence_labels/toyworld.{ids,words,tags}.txt   TReCS files (gold tags: hull-majority rule)
    DIR/annotations.json                       COCO-format masks (RLE), one per instance / stuff region

Scenes are built from 38 COCO-Stuff classes (:mod:`.toyworld_classes`: 20 stuff, 18 things) in 7
themes (beach, park, street, room, farm, snow, lake); a scene holds 2–4 stuff bands, 0–6 stuff
blobs and 2–6 things: 4–10 distinct classes, median 6 (measured on 100 scenes of seed 0). ``image_id`` is
``str(seed * 1_000_000 + index)``, so ids are numeric like COCO's and differ across seeds.

>>> scene = generate_scene(0, seed=0, image_size=64)
>>> len(scene.tags) == len(scene.narrative.words)
True
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from trecs_eval.atomic import ensure_dir, file_mode
from trecs_eval.data.coco_stuff import (
    coco_categories,
    masks_to_coco_annotations,
    write_instance_map,
    write_label_map,
)
from trecs_eval.data.localized_narratives import write_narratives_jsonl
from trecs_eval.data.narratives import Narrative
from trecs_eval.data.sequence_labels import write_sequence_labels
from trecs_eval.data.toyworld_classes import CLASSES
from trecs_eval.data.toyworld_io import (
    FORMAT_VERSION,
    SEQUENCE_LABEL_SPLIT,
    ToyworldManifest,
    ToyworldPaths,
    foreign_entries,
    read_manifest,
    remove_toyworld,
    write_manifest,
)
from trecs_eval.data.toyworld_narrative import caption_of, plan_visits
from trecs_eval.data.toyworld_paint import paint
from trecs_eval.data.toyworld_render import Layout, displace, make_layout, rasterize
from trecs_eval.data.toyworld_trace import gold_tags, timeline
from trecs_eval.errors import ConfigError

__all__ = ["FORMAT_VERSION", "Scene", "ToyworldManifest", "ToyworldPaths", "generate_scene", "read_manifest",
           "render_shifted", "write_toyworld"]

MAX_ITEMS_PER_SEED = 1_000_000  # image_id = seed * 1_000_000 + index
MIN_IMAGE_SIZE = 32
MIN_VISIBLE_FRACTION = 0.5  # a thing hidden more than half by nearer things is removed from the scene
MIN_THING_PIXELS = 0.004  # ... and so is one covering less than 0.4% of the image
SHIFT_DISPLACEMENT = (0.03, 0.08)  # shifted set: objects move this far (fraction of the image side)
SHIFT_COLOUR_STD = 14.0  # shifted set: per-class colour offset, grey levels
SHIFT_BLUR_RADIUS = 1.2  # shifted set: Gaussian blur radius in pixels at 256 px (scaled with size)
_STREAM_LAYOUT, _STREAM_PAINT, _STREAM_NARRATIVE, _STREAM_SHIFT = range(4)


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """An independent random stream per (seed, scene, purpose): scenes do not depend on each other."""
    return np.random.default_rng(np.random.SeedSequence([seed, index, stream]))


@dataclass(frozen=True)
class Scene:
    """One toyworld item: layout, narrative, rasters and gold tags.

    ``labels``: H×W uint8 COCO-Stuff ids; ``instances``: H×W uint16 ids; ``image``: H×W×3 uint8;
    ``tags``: one label name per word of ``narrative.words``; ``mentioned``: per utterance, the
    label id the speaker was naming (None for filler such as "in this image we can see").
    """

    index: int
    seed: int
    layout: Layout
    narrative: Narrative
    tags: tuple[str, ...]
    mentioned: tuple[int | None, ...]
    labels: np.ndarray = field(compare=False, repr=False)
    instances: np.ndarray = field(compare=False, repr=False)
    image: np.ndarray = field(compare=False, repr=False)

    @property
    def item_id(self) -> str:
        return self.narrative.item_id


def _visible_layout(layout: Layout, size: int) -> tuple[Layout, np.ndarray, np.ndarray]:
    """Drop things that nearer things hide (or that are tiny), re-rasterizing until stable."""
    for _ in range(4):
        labels, instances, full = rasterize(layout, size)
        visible = np.bincount(instances.ravel(), minlength=max(full, default=0) + 1)
        keep = tuple(s for s in layout.shapes if CLASSES[s.name].kind != "thing" or (
            visible[s.instance] >= MIN_VISIBLE_FRACTION * full[s.instance]
            and visible[s.instance] >= MIN_THING_PIXELS * size * size))
        if len(keep) == len(layout.shapes):
            return layout, labels, instances
        layout = replace(layout, shapes=keep)
    return layout, *rasterize(layout, size)[:2]


def generate_scene(index: int, seed: int, image_size: int = 256) -> Scene:
    """Build scene ``index`` of the toyworld with ``seed`` (pure: no I/O, same inputs -> same scene)."""
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"toyworld image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    layout, labels, instances = _visible_layout(make_layout(_rng(seed, index, _STREAM_LAYOUT)), image_size)
    image = paint(layout, instances, _rng(seed, index, _STREAM_PAINT))
    rng = _rng(seed, index, _STREAM_NARRATIVE)
    annotator_id = int(rng.integers(1, 100))
    visits = plan_visits(layout, instances, rng)
    timed, traces = timeline(visits, instances, rng)
    narrative = Narrative(
        dataset_id="toyworld",
        image_id=str(seed * MAX_ITEMS_PER_SEED + index),
        annotator_id=annotator_id,
        caption=caption_of([v.text for v in visits]),
        timed_caption=timed,
        traces=traces,
        voice_recording="",
    )
    tags = tuple(gold_tags(narrative, labels))
    return Scene(index, seed, layout, narrative, tags, tuple(v.mentioned for v in visits), labels, instances,
                 image)


def render_shifted(scene: Scene) -> np.ndarray:
    """The scene's distribution-shifted image: shapes displaced by SHIFT_DISPLACEMENT, class
    colours offset by N(0, SHIFT_COLOUR_STD²) per channel, then Gaussian-blurred (textures soften)."""
    size = scene.labels.shape[0]
    rng = _rng(scene.seed, scene.index, _STREAM_SHIFT)
    moved = displace(scene.layout, rng, SHIFT_DISPLACEMENT)
    _, instances, _ = rasterize(moved, size)
    shift = {name: rng.normal(0.0, SHIFT_COLOUR_STD, 3).astype(np.float32) for name in sorted(CLASSES)}
    image = paint(moved, instances, rng, colour_shift=shift)
    blur = ImageFilter.GaussianBlur(SHIFT_BLUR_RADIUS * size / 256)
    return np.asarray(Image.fromarray(image).filter(blur))


def _save_png(array: np.ndarray, path: Path) -> None:
    # compress_level 1: about 5x faster than the default and still lossless.
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


@dataclass(frozen=True)
class _Written:
    """What a worker sends back for one scene: its narrative, tags and COCO records."""

    narrative: Narrative
    tags: tuple[str, ...]
    image: dict
    annotations: list[dict]


def _build_item(job: tuple[int, int, int, bool, str]) -> _Written:
    """Worker: generate one scene, write its PNGs, return its text records (no shared state)."""
    index, seed, size, shifted, root = job
    scene = generate_scene(index, seed, size)
    out, item = Path(root), scene.item_id
    _save_png(scene.image, out / "images" / f"{item}.png")
    write_label_map(out / "segmentation" / f"{item}.png", scene.labels)
    write_instance_map(out / "instances" / f"{item}.png", scene.instances)
    if shifted:
        _save_png(render_shifted(scene), out / "images_shifted" / f"{item}.png")
    image_id = int(scene.narrative.image_id)
    return _Written(
        narrative=scene.narrative,
        tags=scene.tags,
        image={"id": image_id, "file_name": f"{item}.png", "height": size, "width": size},
        annotations=masks_to_coco_annotations(scene.labels, scene.instances, image_id),
    )


def _check_args(n: int, seed: int, image_size: int) -> None:
    if not 1 <= n <= MAX_ITEMS_PER_SEED:
        raise ConfigError(f"toyworld n must be between 1 and {MAX_ITEMS_PER_SEED}, got {n}")
    if seed < 0:
        raise ConfigError(f"toyworld seed must be a non-negative integer, got {seed}")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"toyworld image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}")


def _prepare_target(out: Path) -> Path:
    """A fresh temporary sibling of ``out``; refuses to replace a non-empty non-toyworld folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and foreign_entries(out):
        remove_toyworld(out)  # raises, naming what is not ours; nothing is deleted
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    os.chmod(tmp, file_mode(directory=True))  # mkdtemp gives 0700; a dataset folder is shared
    for sub in ("images", "images_shifted", "segmentation", "instances", "sequence_labels"):
        (tmp / sub).mkdir(parents=True)
    return tmp


def write_toyworld(out: Path, n: int = 500, seed: int = 0, *, image_size: int = 256, shifted: bool = True,
                   progress: bool = True, workers: int | None = None) -> ToyworldManifest:
    """Write a toyworld dataset of ``n`` scenes into ``out`` (layout in the module docstring).

    The folder is written next to ``out`` and renamed into place at the end, so a crash never
    leaves half a dataset; an existing toyworld folder at ``out`` is replaced. ``workers``
    processes render scenes (default: 2 when n >= 64, else 1); output bytes do not depend on it.
    """
    _check_args(n, seed, image_size)
    out = Path(out)
    ensure_dir(out.parent)  # a file in the way is a WriteError naming it
    tmp = _prepare_target(out)
    if not shifted:
        (tmp / "images_shifted").rmdir()
    jobs = [(i, seed, image_size, shifted, str(tmp)) for i in range(n)]
    workers = workers if workers is not None else (min(2, os.cpu_count() or 1) if n >= 64 else 1)
    bar = tqdm(total=n, desc="toyworld", unit="scene", disable=not progress)
    try:
        if workers > 1:
            with _pool_context().Pool(workers) as pool:
                items = [_tick(bar, r) for r in pool.imap(_build_item, jobs, chunksize=8)]
        else:
            items = [_tick(bar, _build_item(job)) for job in jobs]
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    manifest = _write_texts(tmp, items, n, seed, image_size, shifted)
    if out.exists():
        remove_toyworld(out)  # checked before the work started; checked again: it may have changed
    tmp.rename(out)
    return replace(manifest, paths=ToyworldPaths.under(out, shifted))


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork where the platform has it: workers need only numpy/PIL state, start in milliseconds, and
    # callers' scripts need no `if __name__ == "__main__"` guard; spawn elsewhere.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _tick(bar: tqdm, item: _Written) -> _Written:
    bar.update(1)
    return item


def _write_texts(root: Path, items: list[_Written], n: int, seed: int, image_size: int,
                 shifted: bool) -> ToyworldManifest:
    """narratives.jsonl, the TReCS files, annotations.json and manifest.json, in index order."""
    paths = ToyworldPaths.under(root, shifted)
    write_narratives_jsonl(paths.narratives, (it.narrative for it in items))
    ids = [it.narrative.item_id for it in items]
    write_sequence_labels(paths.sequence_labels, SEQUENCE_LABEL_SPLIT, ids,
                          [it.narrative.words for it in items], [it.tags for it in items])
    # Annotation ids count up over the whole file, in item order.
    annotations = [dict(a, id=k + 1) for k, a in enumerate(a for it in items for a in it.annotations)]
    coco = {"info": {"description": f"toyworld seed {seed}", "version": str(FORMAT_VERSION)},
            "images": [it.image for it in items], "categories": coco_categories(),
            "annotations": annotations}
    paths.annotations.write_text(json.dumps(coco, separators=(",", ":")), encoding="utf-8")
    manifest = ToyworldManifest(n=n, seed=seed, image_size=image_size, shifted=shifted,
                                item_ids=tuple(ids), paths=paths)
    write_manifest(manifest)
    return manifest

"""Scale rehearsal of LN-COCO: a synthetic set with LN-COCO val's real shape, then prepare + run.

    python benchmarks/bench_ln_coco_scale.py --scale 0.1 --out /tmp/lnscale

At ``--scale 1``: 8,573 val narratives over 5,000 images, a 118,287-mask bank (one mask per COCO
train2017 image by default; ``--masks-per-image``), a 134,272-narrative caption bank; everything
is multiplied by ``--scale``. The synthetic downloads are written in the layout ``data download``
leaves (pixels are a small pool of images hard-linked, so writing them costs little); then
``trecs-eval data prepare ln-coco`` and ``trecs-eval run`` (systems ``trecs`` with predicted tags
and ``real``; ``--metrics``) run as child processes, each measured with ``os.wait4`` (wall time and
peak RSS). Targets: peak RSS < 4 GB, mask-bank build < 10 min, retrieval + compose
>= 20 narratives/s, HTML report < 25 MB. The tagger is ``fill`` by default (``--tagger``): the
neural one on 134k narratives is a ~40 min CPU job on its own, measured elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from trecs_eval.data.coco_stuff import LABELS
from trecs_eval.data.download_sources import SOURCES
from trecs_eval.data.narratives import tokenize

FULL = {"val_narratives": 8573, "val_images": 5000, "bank_masks": 118_287, "captions": 134_272}
TARGETS = {"peak_rss_gb": 4.0, "bank_s": 600.0, "narratives_per_s": 20.0, "html_mb": 25.0}
FILLER = ("in", "this", "image", "we", "can", "see", "a", "the", "and", "there", "is", "on", "of", "at")
POOL = 64  # distinct pictures; the rest are hard links
TRAIN_SIZE = (640, 480)  # COCO's typical size: RLE decode cost is part of compose


def _narrative(rng: np.random.Generator, image_id: str, annotator: int, dataset: str,
               traces: bool) -> tuple[dict, list[str], list[str]]:
    """An LN JSON object with ~40 words, and its words and gold tags (label words tag
    themselves; fillers take the next label, as the released tags do)."""
    labels = [LABELS[i] for i in rng.choice(len(LABELS), size=int(rng.integers(3, 7)), replace=False)]
    words, tags = [], []
    for label in labels:
        fill = [str(w) for w in rng.choice(FILLER, size=int(rng.integers(4, 9)))]
        named = tokenize(label.name)  # "wall-concrete" is said "wall concrete": two words, one tag
        words += [*fill, *named]
        tags += [label.name] * (len(fill) + len(named))
    timed, points = [], []
    for k in range(0, len(words), 5):
        timed.append({"utterance": " ".join(words[k:k + 5]), "start_time": k * 0.4,
                      "end_time": k * 0.4 + 1.9})
    if traces:
        walk = np.clip(0.5 + np.cumsum(rng.normal(0, 0.03, size=(len(words) * 2, 2)), axis=0), 0, 1)
        points = [{"x": round(float(x), 4), "y": round(float(y), 4), "t": round(i * 0.2, 2)}
                  for i, (x, y) in enumerate(walk)]
    obj = {"dataset_id": dataset, "image_id": image_id, "annotator_id": annotator, "caption": " ".join(words),
           "timed_caption": timed, "traces": [points] if traces else [], "voice_recording": ""}
    return obj, words, tags


def _pool(folder: Path, size: tuple[int, int], fmt: str, rng: np.random.Generator) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(POOL):
        path = folder / f"pool{k:03d}.{fmt}"
        colours = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        Image.fromarray(colours).resize(size, Image.Resampling.BILINEAR).save(path)
        out.append(path)
    return out


def _link(pool: list[Path], dest: Path, k: int) -> None:
    if not dest.exists():
        os.link(pool[k % len(pool)], dest)


def write_val(root: Path, n_narr: int, n_img: int, rng: np.random.Generator) -> None:
    """LN val JSONL, TReCS val label files, COCO val images and COCO-Stuff val maps."""
    ln, labels = root / "localized_narratives", root / "trecs_sequence_labels"
    ln.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    images, maps = root / "coco" / "val2017", root / "coco_stuff" / "val2017"
    released = root / "trecs_released"
    pool = _pool(root / "pool" / "val", (256, 256), "jpg", rng)
    rpool = _pool(root / "pool" / "released", (256, 256), "png", rng)
    mpool = root / "pool" / "map.png"
    Image.fromarray(rng.integers(91, 182, size=(64, 64), dtype=np.uint8)).save(mpool)
    for folder in (images, maps, released):
        folder.mkdir(parents=True, exist_ok=True)
    ids, word_lines, tag_lines = [], [], []
    with open(ln / "coco_val_localized_narratives.jsonl", "w", encoding="utf-8") as out:
        for k in range(n_narr):
            image_id = 100_000 + (k % n_img)
            obj, words, tags = _narrative(rng, str(image_id), k, "mscoco_val2017", traces=True)
            out.write(json.dumps(obj) + "\n")
            ids.append(f"{image_id}_{k}")
            word_lines.append(" ".join(words))
            tag_lines.append(" ".join(tags))
            _link(pool, images / f"{image_id:012d}.jpg", image_id)
            _link([mpool], maps / f"{image_id:012d}.png", 0)
            _link(rpool, released / f"{image_id}_{k}.png", k)
    for name, lines in (("ids", ids), ("words", word_lines), ("cleaned_tags", tag_lines)):
        (labels / f"val_coco.{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _rle_string(polygon: list[float]) -> str:
    rle = mask_utils.merge(mask_utils.frPyObjects([polygon], TRAIN_SIZE[1], TRAIN_SIZE[0]))
    return rle["counts"].decode("ascii")


def write_train(root: Path, n_masks: int, per_image: int, n_captions: int, rng: np.random.Generator) -> None:
    """COCO train annotations (things as polygons, stuff as RLE), train images, LN train shards and
    the TReCS train words/tags."""
    n_images = max(1, n_masks // per_image)
    images = root / "coco" / "train2017"
    images.mkdir(parents=True, exist_ok=True)
    pool = _pool(root / "pool" / "train", TRAIN_SIZE, "jpg", rng)
    coco_images, things, stuff = [], [], []
    w, h = TRAIN_SIZE
    for k in range(n_images):
        coco_images.append({"id": k + 1, "file_name": f"{k + 1:012d}.jpg", "width": w, "height": h})
        _link(pool, images / f"{k + 1:012d}.jpg", k)
        for m in range(per_image):
            label = LABELS[int(rng.integers(len(LABELS)))]
            x0, y0 = float(rng.uniform(0, w * 0.6)), float(rng.uniform(0, h * 0.6))
            x1, y1 = x0 + float(rng.uniform(40, w * 0.4)), y0 + float(rng.uniform(40, h * 0.4))
            polygon = [x0, y0, x1, y0 + 10, x1, y1, x0 + 15, y1]
            ann = {"id": k * per_image + m + 1, "image_id": k + 1, "category_id": label.id, "iscrowd": 0,
                   "area": (x1 - x0) * (y1 - y0), "bbox": [x0, y0, x1 - x0, y1 - y0]}
            if label.is_thing:
                things.append({**ann, "segmentation": [polygon]})
            else:
                stuff.append({**ann, "segmentation": {"size": [h, w], "counts": _rle_string(polygon)}})
    cats = [{"id": lab.id, "name": lab.name, "supercategory": "x"} for lab in LABELS]
    ann_dir = root / "coco" / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    for name, anns in (("instances_train2017.json", things), ("stuff_train2017.json", stuff)):
        coco = {"images": coco_images, "annotations": anns, "categories": cats}
        (ann_dir / name).write_text(json.dumps(coco))
    shards = root / "localized_narratives" / "coco_train"
    shards.mkdir(parents=True, exist_ok=True)
    handles = [open(shards / f.name, "w", encoding="utf-8")  # noqa: SIM115 - closed below
               for f in SOURCES["ln-coco-train"].files]
    word_lines, tag_lines = [], []
    for k in range(n_captions):
        obj, words, tags = _narrative(rng, str(1 + k % n_images), k, "mscoco_train2017", traces=True)
        handles[k % len(handles)].write(json.dumps(obj) + "\n")
        word_lines.append(" ".join(words))
        tag_lines.append(" ".join(tags))
    for handle in handles:
        handle.close()
    labels = root / "trecs_sequence_labels"
    (labels / "train_coco.words.txt").write_text("\n".join(word_lines) + "\n", encoding="utf-8")
    (labels / "train_coco.tags.txt").write_text("\n".join(tag_lines) + "\n", encoding="utf-8")


def measured(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS GB) of one child process (``os.wait4``: this child only)."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "trecs_eval", *argv], cwd=cwd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024 ** 2  # KiB -> GiB


def compose_rate(out: Path, n_max: int) -> tuple[float, float, int, float, float]:
    """Narratives/s of the ``trecs`` generator on the first ``n_max`` evaluation narratives, in this
    process (the run's generate stage also writes PNGs): (tag + retrieve + compose, + collage, n,
    and the same two per CPU-second of this process, which a shared machine's load does not skew)."""
    from reference_pipeline.compose import compose, trace_sequences
    from reference_pipeline.generator import TReCSGenerator
    from trecs_eval.data.evalset import build_evalset
    from trecs_eval.generation.protocol import GeneratorContext
    from trecs_eval.metrics.label_canvas import points_for_words

    data = out / "data"
    items = build_evalset(data / "localized_narratives" / "coco_val_localized_narratives.jsonl",
                          data / "coco" / "val2017").items[:n_max]
    gen = TReCSGenerator({"bank": str(data / "trecs_train" / "bank"),
                          "tagger_checkpoint": str(data / "trecs_train" / "tagger.pt")},
                         GeneratorContext(image_size=256))
    started, cpu = time.perf_counter(), time.process_time()
    for item in items:
        words = item.narrative.words
        tags = gen.tags_for(item)
        ranking = gen.retriever.rank(words, tags)
        compose(gen.bank, trace_sequences(tags, points_for_words(item.narrative, words)), ranking,
                (256, 256), gen.params.top_k, False)
    composed, composed_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    gen.generate(items, seed=0)
    full, full_cpu = time.perf_counter() - started, time.process_time() - cpu
    n = len(items)
    return n / composed, n / full, n, n / composed_cpu, n / full_cpu


def run_config(out: Path, metrics: list[str]) -> Path:
    path = out / "scale.toml"
    metric_tables = "".join(f'\n[[metrics]]\nname = "{m}"\n' for m in metrics)
    path.write_text(f"""name = "ln-coco-scale"
out_dir = "runs/scale"
seed = 0
device = "cpu"
image_size = 256
batch_size = 32
on_missing = "intersect"
report_formats = ["html"]

[dataset]
kind = "localized_narratives"
narratives = "data/localized_narratives/coco_val_localized_narratives.jsonl"
images = "data/coco/val2017"
sequence_labels = "data/trecs_sequence_labels/val_coco"
segmentation = "data/coco_stuff/val2017"
subset = "data/trecs_sequence_labels/val_coco.ids.txt"

[[systems]]
name = "trecs"
generator = "trecs"
[systems.params]
tags = "predicted"
bank = "data/trecs_train/bank"
tagger_checkpoint = "data/trecs_train/tagger.pt"

[[systems]]
name = "real"
{metric_tables}""", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.05, help="fraction of LN-COCO's size (1 = full)")
    parser.add_argument("--masks-per-image", type=int, default=1)
    parser.add_argument("--tagger", default="fill")
    parser.add_argument("--metrics", default="fid,trace_canvas_accuracy,canvas_miou")
    parser.add_argument("--run-limit", type=int, default=None,
                        help="run over the first N narratives only (the data stays at --scale)")
    parser.add_argument("--rate-items", type=int, default=500,
                        help="narratives timed in-process for the compose rate")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ln_coco_scale"))
    args = parser.parse_args()
    sizes = {k: max(2, round(v * args.scale)) for k, v in FULL.items()}
    shutil.rmtree(args.out, ignore_errors=True)  # the benchmark's own scratch folder
    data = args.out / "data"
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    write_val(data, sizes["val_narratives"], sizes["val_images"], rng)
    write_train(data, sizes["bank_masks"], args.masks_per_image, sizes["captions"], rng)
    print(f"scale {args.scale}: {sizes} "
          f"(synthetic downloads written in {time.perf_counter() - started:.0f} s)")
    prep_s, prep_gb = measured(["-q", "data", "prepare", "ln-coco", "--tagger", args.tagger], args.out)
    state = json.loads((data / "prepared.json").read_text())
    config = run_config(args.out, args.metrics.split(","))
    limit = ["--limit", str(args.run_limit)] if args.run_limit else []
    run_s, run_gb = measured(["-q", "run", str(config.name), "--uncalibrated-weights", *limit], args.out)
    results = json.loads((args.out / "runs" / "scale" / "results.json").read_text())
    timings = results["timings"]
    n = results["dataset"]["n_items"]
    generate_s = timings["generate"]  # trecs (tag + retrieve + compose + collage) and real (copy)
    rate, rate_collage, n_rate, rate_cpu, rate_collage_cpu = compose_rate(args.out, args.rate_items)
    html = max((args.out / "runs" / "scale" / "report").glob("*.html"), key=lambda p: p.stat().st_size)
    html_mb = html.stat().st_size / 1e6
    bank_s = state["train/bank"]["seconds"]
    rows = [(f"prepare: {k}", f"{v['seconds']:.1f} s", "") for k, v in state.items()]
    rows += [("prepare total (child process)", f"{prep_s:.1f} s", f"peak RSS {prep_gb:.2f} GB"),
             *((f"run: {k}", f"{v:.1f} s", "") for k, v in timings.items()),
             ("run total (child process)", f"{run_s:.1f} s", f"peak RSS {run_gb:.2f} GB"),
             ("mask-bank build", f"{bank_s:.1f} s", f"target < {TARGETS['bank_s']:.0f} s"),
             ("run's generate stage (trecs + real)", f"{n / generate_s:.1f} narratives/s", "PNGs written"),
             (f"tag + retrieval + compose ({n_rate})", f"{rate:.1f} narratives/s",
              f"target >= {TARGETS['narratives_per_s']:.0f} (wall; {rate_cpu:.1f} per CPU-second)"),
             (f"  ... + collage synthesis ({n_rate})", f"{rate_collage:.1f} narratives/s",
              f"(wall; {rate_collage_cpu:.1f} per CPU-second)"),
             ("peak RSS", f"{max(prep_gb, run_gb):.2f} GB", f"target < {TARGETS['peak_rss_gb']:.0f} GB"),
             ("HTML report", f"{html_mb:.2f} MB", f"target < {TARGETS['html_mb']:.0f} MB")]
    for name, value, note in rows:
        print(f"{name:<38} {value:>22}  {note}")
    print(f"run over {n} narratives; load average at the end: {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

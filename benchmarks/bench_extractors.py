"""Images/s of every feature extractor on this machine (random weights: speed does not depend on them).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_extractors.py [--n 16] [--n-large 6] [--skip NAME,...]

Each extractor runs through the package's own code path (decode, preprocessing, forward pass,
cache write) on ``n`` synthetic 256 px PNGs with an empty cache; set-up (weights generation,
model loading) is timed separately and not counted. Extractors: ``inception`` (299 px, FID/KID/IS),
``clip-b32`` (ViT-B-32, 224 px, CLIPScore), ``dinov2-s14`` and ``dinov2-l14`` (224 px; L/14
defines FD-DINOv2), ``clip-l14-336`` (CMMD's ViT-L-14-336, only with ``--with-cmmd-clip``: its
random weights take minutes to calibrate), ``mask2former`` (transformers' default Mask2Former
configuration, Swin backbone, 133 COCO-panoptic classes, shortest edge 384 px) and ``oracle``
(gold maps, no network). ``--n-large`` images for the ViT-L and segmentation models.
Prints one line per extractor and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trecs_eval.features.cache import FeatureCache

SIZE = 256
Extract = Callable[[list[Path]], object]
Builder = Callable[[FeatureCache], tuple[Extract, str]]


def _images(directory: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        blocks = rng.integers(0, 256, (8, 8, 3))
        pixels = np.kron(blocks, np.ones((SIZE // 8, SIZE // 8, 1))) + rng.normal(0, 8, (SIZE, SIZE, 3))
        paths.append(directory / f"{i:05d}.png")
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(paths[-1])
    return paths


def _params(model: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M"


def _inception(cache: FeatureCache) -> tuple[Extract, str]:
    from trecs_eval.features.inception import InceptionExtractor

    ext = InceptionExtractor(uncalibrated=True, device="cpu", progress=False, cache=cache)
    return ext.extract, _params(ext.model)


def _clip(model: str) -> Builder:
    def build(cache: FeatureCache) -> tuple[Extract, str]:
        from trecs_eval.features.clip import ClipEmbedder

        emb = ClipEmbedder(model=model, uncalibrated=True, device="cpu", progress=False, cache=cache)
        return emb.image_embeddings, _params(emb.model.visual)
    return build


def _dinov2(arch: str) -> Builder:
    def build(cache: FeatureCache) -> tuple[Extract, str]:
        from trecs_eval.features.dinov2 import DinoV2Extractor

        ext = DinoV2Extractor(arch=arch, uncalibrated=True, device="cpu", progress=False, cache=cache)
        return ext.extract, _params(ext.model)
    return build


def _mask2former(cache: FeatureCache) -> tuple[Extract, str]:
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor
    from transformers.utils import logging as hf_logging

    from trecs_eval.data.coco_panoptic import PANOPTIC_NAMES
    from trecs_eval.features.segmenter import Mask2FormerSegmenter, segment_images

    hf_logging.disable_progress_bar()  # keep the printed table readable
    directory = Path(tempfile.mkdtemp(prefix="m2f-"))
    id2label = dict(enumerate(PANOPTIC_NAMES))
    config = Mask2FormerConfig(num_labels=len(id2label), id2label=id2label,
                               label2id={v: k for k, v in id2label.items()})
    torch.manual_seed(0)
    Mask2FormerForUniversalSegmentation(config).save_pretrained(directory)
    Mask2FormerImageProcessor(size={"shortest_edge": 384, "longest_edge": 1333}).save_pretrained(directory)
    seg = Mask2FormerSegmenter(directory, device="cpu")
    return (lambda paths: segment_images(seg, paths, cache)), _params(seg._model)


def _oracle(images: list[Path]) -> Builder:
    def build(cache: FeatureCache) -> tuple[Extract, str]:
        from trecs_eval.data.coco_stuff import write_label_map
        from trecs_eval.features.segmenter import OracleSegmenter, segment_images

        pairs = []
        for path in images:
            gold = path.with_suffix(".seg.png")
            write_label_map(gold, np.full((SIZE, SIZE), 157, np.uint8))
            pairs.append((path, gold, False))
        seg = OracleSegmenter(pairs)
        return (lambda paths: segment_images(seg, paths, cache)), "0"
    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--n-large", type=int, default=6)
    parser.add_argument("--skip", default="", help="comma-separated extractor names")
    parser.add_argument("--with-cmmd-clip", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    root = Path(tempfile.mkdtemp(prefix="bench-extractors-"))
    os.environ.setdefault("TRECS_EVAL_CACHE", str(root / "cache"))  # random weights land here
    images = _images(root / "images", max(args.n, args.n_large))
    plan: list[tuple[str, Builder, int, str]] = [
        ("inception", _inception, args.n, "299"), ("clip-b32", _clip("ViT-B-32"), args.n, "224"),
        ("dinov2-s14", _dinov2("vits14"), args.n, "224"),
        ("dinov2-l14", _dinov2("vitl14"), args.n_large, "224"),
        ("mask2former", _mask2former, args.n_large, "384+"), ("oracle", _oracle(images), args.n, "-"),
    ]
    if args.with_cmmd_clip:
        plan.insert(2, ("clip-l14-336", _clip("ViT-L-14-336"), args.n_large, "336"))
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    print(f"{'extractor':<14}{'params':>9}{'px':>6}{'n':>4}{'setup s':>9}{'extract s':>11}{'img/s':>8}")
    for name, build, n, px in plan:
        if name in skip:
            continue
        with FeatureCache(root / f"{name}.sqlite") as cache:
            start = time.perf_counter()
            extract, params = build(cache)
            setup = time.perf_counter() - start
            start = time.perf_counter()
            extract(images[:n])
            took = time.perf_counter() - start
        print(f"{name:<14}{params:>9}{px:>6}{n:>4}{setup:>9.1f}{took:>11.2f}{n / took:>8.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} cores; "
          f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()

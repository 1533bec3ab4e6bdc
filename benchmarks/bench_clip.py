"""CLIP embeddings: ClipEmbedder vs a bare open_clip loop on the same images/texts, same weights.

    .venv/bin/python benchmarks/bench_clip.py [--n 64] [--clip-model ViT-B-32] [--clip-pretrained PATH]

Prints, in one run and on the same threads: images/s and texts/s of the bare loop (decode +
open_clip transform + encode, batches of 32) and of ClipEmbedder cold (plus hashing, cache
writes, text chunking) and warm (cache only), with the ratios. Without ``--clip-pretrained``
a calibrated random ViT-B-32 checkpoint is generated (the timing does not depend on weights).
Texts are the first ``n`` LN-COCO val narratives: from ``data/trecs_sequence_labels`` (``trecs-eval
data download trecs-labels``) when present, else from the subset the tests vendor (507 lines).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trecs_eval.data.narratives import Narrative
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.clip import ClipEmbedder
from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint

REPO = Path(__file__).resolve().parents[1]
WORDS = next(p for p in (REPO / "data" / "trecs_sequence_labels" / "val_coco.words.txt",
                         REPO / "tests" / "data" / "trecs_sequence_labels_subset" / "val_coco.words.txt")
             if p.is_file())
BATCH = 32


def _images(directory: Path, n: int, size: int = 256) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        blocks = rng.integers(0, 256, (8, 8, 3))
        pixels = np.kron(blocks, np.ones((size // 8, size // 8, 1))) + rng.normal(0, 8, (size, size, 3))
        paths.append(directory / f"{i:05d}.png")
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(paths[-1])
    return paths


def _bare_images(model: torch.nn.Module, preprocess, paths: list[Path]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(paths), BATCH):
            pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[i : i + BATCH]])
            model.encode_image(pixels)
    return time.perf_counter() - start


def _bare_texts(model: torch.nn.Module, tokenizer, texts: list[str]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            model.encode_text(tokenizer(texts[i : i + BATCH]))
    return time.perf_counter() - start


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--clip-model", default="ViT-B-32")
    parser.add_argument("--clip-pretrained", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = args.clip_pretrained or str(root / "clip.pt")
        if args.clip_pretrained is None:
            make_calibrated_clip_checkpoint(weights, args.clip_model, seed=0)
        paths = _images(root, args.n)
        captions = WORDS.read_text().splitlines()[: args.n]
        narratives = [Narrative("coco", str(i), 0, c) for i, c in enumerate(captions)]
        with FeatureCache(root / "cache.sqlite") as cache:
            ours = ClipEmbedder(args.clip_model, weights, device="cpu", cache=cache, progress=False)
            bare_img = _bare_images(ours.model, ours.preprocess, paths)
            bare_txt = _bare_texts(ours.model, ours.tokenizer, captions)
            cold_img = _timed(lambda: ours.image_embeddings(paths))
            cold_txt = _timed(lambda: ours.text_embeddings(narratives))
            warm_img = _timed(lambda: ours.image_embeddings(paths))
            warm_txt = _timed(lambda: ours.text_embeddings(narratives))
    n = args.n
    print(f"threads={torch.get_num_threads()} n={n} model={args.clip_model}")
    print(f"images: bare open_clip {n / bare_img:7.1f} img/s | ours cold {n / cold_img:7.1f} img/s "
          f"(ratio {bare_img / cold_img:.2f}x) | ours warm {n / warm_img:9.1f} img/s "
          f"(warm vs bare {bare_img / warm_img:.0f}x)")
    print(f"texts:  bare open_clip {n / bare_txt:7.1f} txt/s (truncate) | "
          f"ours cold {n / cold_txt:7.1f} txt/s "
          f"(utterances, ratio {bare_txt / cold_txt:.2f}x) | ours warm {n / warm_txt:9.1f} txt/s "
          f"(warm vs bare {bare_txt / warm_txt:.0f}x)")


if __name__ == "__main__":
    main()

"""Trace-local CLIP's cost against CLIPScore's, on demo-sized toyworld data, in one run.

    .venv/bin/python benchmarks/bench_trace_local.py [--n 300] [--image-size 128] [--clip-pretrained PATH]

Builds a toyworld split (the demo's evaluation split: n = 300, seed 0, 128 px) and, with one
ViT-B-32 (a calibrated random checkpoint unless ``--clip-pretrained``: the timing does not depend
on the weights) and a cold cache, times on the same threads:

* CLIPScore: image embeddings of the n images (images/s: hashing, decode, transform, forward,
  cache writes), then the rest of the metric (narrative texts, scores, bootstrap);
* trace-local CLIP: the crop embeddings of every scored utterance (crops/s: header read, hashing,
  decode, crop, transform, forward, cache writes), the utterance texts, then the whole metric on
  the now warm cache (regions, cache reads, scores, bootstrap, per-class breakdown).

Prints one summary line with the ratio crops/s ÷ CLIPScore images/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from trecs_eval.config import MetricSpec
from trecs_eval.data.evalset import load_toyworld
from trecs_eval.data.toyworld import write_toyworld
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint
from trecs_eval.features.registry import ExtractorSettings, FeatureExtractors
from trecs_eval.measure import ImageSet, ReferenceFeatures, TextEmbeddings, evaluate_set, plan_metrics
from trecs_eval.metrics.trace_local_clip import narrative_regions


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--clip-pretrained", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_toyworld(root / "eval", n=args.n, seed=0, image_size=args.image_size, shifted=False,
                       progress=False)
        weights = args.clip_pretrained or root / "clip.pt"
        if args.clip_pretrained is None:
            make_calibrated_clip_checkpoint(weights, "ViT-B-32", seed=0)
        items = load_toyworld(root / "eval").items
        settings = ExtractorSettings(clip_model="ViT-B-32", clip_pretrained=str(weights), progress=False)
        extractors = FeatureExtractors(settings, FeatureCache(root / "cache"))
        paths = tuple(Path(it.reference_image) for it in items)
        images = ImageSet("real", tuple(it.item_id for it in items), paths,
                          tuple(it.narrative for it in items), tuple(items))
        _, t_images = _timed(lambda: extractors.extract("clip", paths))
        texts = TextEmbeddings(extractors, images.narratives)
        _, t_clip_rest = _timed(lambda: evaluate_set(plan_metrics([MetricSpec("clip_score")]), extractors,
                                                     images, ReferenceFeatures(extractors), texts, seed=0))
        regions = [narrative_regions(it.narrative, it.gold_tags) for it in items]
        source = extractors.extract("clip_crops", paths)
        rows = [r for r, reg in enumerate(regions) for _ in reg.scored]
        _, t_crops = _timed(lambda: source.crops(rows, [u.box for reg in regions for u in reg.scored]))
        utterances = [t for reg in regions for t in reg.texts]
        _, t_texts = _timed(lambda: source.texts(utterances))
        plan = plan_metrics([MetricSpec("trace_local_clip")])
        reference = ReferenceFeatures(extractors)
        _, t_rest = _timed(lambda: evaluate_set(plan, extractors, images, reference, texts, seed=0))
        crops_s, images_s = len(rows) / t_crops, args.n / t_images
        print(" | ".join([
            f"trace_local_clip: {len(rows)} crops of {args.n} images at {args.image_size} px in"
            f" {t_crops:.1f} s = {crops_s:.1f} crops/s (+ {len(utterances)} utterance texts"
            f" {t_texts:.1f} s, metric on a warm cache {t_rest:.2f} s)",
            f"clip_score: {args.n} images in {t_images:.1f} s = {images_s:.1f} images/s (+ narrative texts"
            f" and metric {t_clip_rest:.1f} s)",
            f"crops/s / images/s = {crops_s / images_s:.2f}; crops per image {len(rows) / args.n:.1f};"
            f" threads {torch.get_num_threads()}"]))

if __name__ == "__main__":
    main()

"""Trace-local CLIP on the demo's data: real images against the same images with the narratives
shuffled between images, and against the real images flipped left-right.

    .venv/bin/python benchmarks/trace_local_orderings.py [--n 300] [--n-fit 400] [--model ViT-B-32] [--random]

The demo's evaluation split (toyworld n = 300, seed 0, 128 px) is scored three ways: ``real``
(each narrative with its own image), ``shuffled`` (each narrative with the next item's image) and
``flipped`` (its own image mirrored, so the trace no longer points at the things). No pretrained
CLIP can be downloaded here, so CLIP is ``--model`` with calibrated random towers and its two
projections fitted on the demo's train split (``--model trecs-test-tiny-vit``: the tests' small
CLIP, minutes instead of an hour on two CPU cores) (n = 400, seed 1; disjoint images and narratives;
:mod:`tests.trace_local_support`); ``--random`` scores with the calibrated random weights alone
too (what the demo falls back to without weights: no ordering is expected there). Prints one line
per metric and weights: value and 95 % interval per set, and the paired difference real − other
with its image-resampled interval.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tests.clip_support import TINY_CLIP, register_tiny_clip
from tests.trace_local_support import toyworld_aligned_clip
from trecs_eval.config import MetricSpec
from trecs_eval.data.evalset import load_toyworld
from trecs_eval.data.toyworld import write_toyworld
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint
from trecs_eval.features.registry import ExtractorSettings, FeatureExtractors
from trecs_eval.measure import ImageSet, ReferenceFeatures, TextEmbeddings, evaluate_set, plan_metrics
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci

METRICS = ("trace_local_clip", "trace_local_clip_contrast")


def _sets(root: Path, items: list) -> dict[str, list[Path]]:
    flipped = root / "flipped"
    flipped.mkdir(exist_ok=True)
    for it in items:
        with Image.open(it.reference_image) as image:
            image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped / f"{it.item_id}.png")
    real = [Path(it.reference_image) for it in items]
    mirrored = [flipped / f"{it.item_id}.png" for it in items]
    return {"real": real, "shuffled": real[1:] + real[:1], "flipped": mirrored}


def _report(label: str, items: list, sets: dict[str, list[Path]], weights: Path, model: str,
            cache: Path) -> None:
    settings = ExtractorSettings(clip_model=model, clip_pretrained=str(weights), progress=False)
    extractors = FeatureExtractors(settings, FeatureCache(cache))
    plan = plan_metrics([MetricSpec(m) for m in METRICS])
    found = {}
    texts = TextEmbeddings(extractors, [it.narrative for it in items])
    for system, paths in sets.items():
        images = ImageSet(system, tuple(it.item_id for it in items), tuple(paths),
                          tuple(it.narrative for it in items), tuple(items))
        results = evaluate_set(plan, extractors, images, ReferenceFeatures(extractors),
                               texts, seed=0).results
        found[system] = {r.name: r for r in results}
    for name in METRICS:
        real = found["real"][name]
        parts = [f"{s} {found[s][name].value:.2f} [{found[s][name].ci_low:.2f}, {found[s][name].ci_high:.2f}]"
                 for s in sets]
        for other in ("shuffled", "flipped"):
            theirs = found[other][name].per_sample
            keys = sorted(real.per_sample.keys() & theirs.keys())
            diffs = [real.per_sample[k] - theirs[k] for k in keys]
            images = [k.rsplit("_", 1)[0] for k in keys]
            mean, low, high = bootstrap_mean_ci(np.array(diffs), seed=0, clusters=images)
            parts.append(f"real-{other} {mean:+.2f} [{low:+.2f}, {high:+.2f}]")
        print(f"{label} {name} (n={real.n}): " + "; ".join(parts), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--n-fit", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--random", action="store_true", help="also score with the calibrated random weights")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_toyworld(root / "eval", n=args.n, seed=0, image_size=args.image_size, shifted=False,
                       progress=False)
        write_toyworld(root / "fit", n=args.n_fit, seed=1, image_size=args.image_size, shifted=False,
                       progress=False)
        if args.model == TINY_CLIP:  # the tests' small open_clip config, registered for this process
            register_tiny_clip(root)
        items = list(load_toyworld(root / "eval").items)
        sets = _sets(root, items)
        aligned = toyworld_aligned_clip(root, args.model, root / "fit")
        _report(f"{args.model} aligned on toyworld train", items, sets, aligned, args.model, root / "cache")
        if args.random:
            random = root / "random.pt"
            make_calibrated_clip_checkpoint(random, args.model, seed=0)
            _report(f"{args.model} calibrated random", items, sets, random, args.model, root / "cache")


if __name__ == "__main__":
    main()

"""Tagger benchmark: k-fold cross-validation by IMAGE id on the real LN-COCO val TReCS files.

Two narratives of one image never straddle folds (images are dealt to folds, largest first,
each to the fold with the fewest narratives, after a seeded shuffle). Every tagger trains on
k-1 folds and tags the held-out fold without a label bag (unconstrained); ``--oracle-bags``
adds constrained rows that restrict each narrative to its image's gold label bag (the
paper's training-time refinement: an upper bound, not a deployable number).

Prints one table: tagger, word accuracy mean ± std over folds, macro-F1 mean ± std, mean
train and tag seconds per fold, and the accuracy gain over the majority and fill baselines.

    .venv/bin/python benchmarks/bench_tagger.py --folds 5
    .venv/bin/python benchmarks/bench_tagger.py --folds 5 --subsample 2000 --kinds majority fill hmm
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reference_pipeline.tag import load_tagger, save_tagger, train_tagger  # noqa: E402
from reference_pipeline.tag.cli import image_label_bags  # noqa: E402
from reference_pipeline.tag.neural import NeuralConfig  # noqa: E402
from trecs_eval.data.sequence_labels import read_sequence_labels  # noqa: E402
from trecs_eval.metrics.tag_accuracy import tag_accuracy  # noqa: E402

DEFAULT_DATA = REPO / "data" / "trecs_sequence_labels"  # where `trecs-eval data download trecs-labels` writes
# name -> (kind, train options, constrained by the oracle image bag?)
VARIANTS: dict[str, tuple[str, dict, bool]] = {
    "majority": ("majority", {}, False),
    "word-majority": ("word-majority", {}, False),
    "fill": ("fill", {}, False),
    "hmm": ("hmm", {}, False),
    "hmm-power1": ("hmm", {"transition_power": 1.0}, False),
    "neural": ("neural", {}, False),
    "hmm+oracle-bag": ("hmm", {}, True),
    "neural+oracle-bag": ("neural", {}, True),
}


@dataclass
class Scores:
    accuracy: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)
    tag_s: list[float] = field(default_factory=list)


def image_folds(image_ids: list[str], folds: int, seed: int) -> list[int]:
    """Fold index per narrative; all narratives of an image share a fold (balanced greedily)."""
    counts: dict[str, int] = defaultdict(int)
    for image in image_ids:
        counts[image] += 1
    images = sorted(counts)
    rng = np.random.default_rng(seed)
    images = [images[i] for i in rng.permutation(len(images))]
    images.sort(key=lambda im: -counts[im])  # stable: shuffled order within equal counts
    load, fold_of = [0] * folds, {}
    for image in images:
        target = min(range(folds), key=lambda f: (load[f], f))
        fold_of[image] = target
        load[target] += counts[image]
    return [fold_of[image] for image in image_ids]


def subsample_images(image_ids: list[str], narratives: int, seed: int) -> list[int]:
    """Indices of whole images (seeded) until about ``narratives`` narratives are kept."""
    by_image: dict[str, list[int]] = defaultdict(list)
    for index, image in enumerate(image_ids):
        by_image[image].append(index)
    images = sorted(by_image)
    keep: list[int] = []
    for i in np.random.default_rng(seed).permutation(len(images)):
        if len(keep) >= narratives:
            break
        keep.extend(by_image[images[i]])
    return sorted(keep)


def run_fold(name: str, words, tags, bags, train_idx, test_idx, args, scratch: Path,
             trained: dict) -> tuple[float, float, float, float]:
    """Trains (or reuses this fold's identical model for an +oracle-bag row) and scores one variant."""
    kind, options, oracle = VARIANTS[name]
    key = (kind, tuple(sorted(options.items())))
    if key not in trained:
        config = NeuralConfig(epochs=args.epochs, threads=args.threads)
        start = time.perf_counter()
        tagger = train_tagger(kind, [words[i] for i in train_idx], [tags[i] for i in train_idx],
                              seed=args.seed, label_bags=[bags[i] for i in train_idx], neural_config=config,
                              **options)
        train_s = time.perf_counter() - start
        path = save_tagger(tagger, scratch / f"{name}.pt")
        trained[key] = (load_tagger(path), train_s)  # score what a user would load
    tagger, train_s = trained[key]
    start = time.perf_counter()
    predicted = [tagger.tag(words[i], allowed_labels=bags[i] if oracle else None) for i in test_idx]
    tag_s = time.perf_counter() - start
    result = tag_accuracy([tags[i] for i in test_idx], predicted)
    return result.word_accuracy, result.macro_f1, train_s, tag_s


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):5.1f} ± {100 * std:3.1f}"


def print_table(scores: dict[str, Scores], n_narratives: int, folds: int,
                only_folds: list[int] | None = None) -> None:
    base = {k: statistics.fmean(scores[k].accuracy) for k in ("majority", "fill") if k in scores}
    print(f"\nTagger CV on LN-COCO val: {n_narratives} narratives, {folds} folds by image id "
          f"{'' if only_folds is None else f' (only folds {only_folds})'} "
          f"(word accuracy and macro-F1 in %, mean ± std over folds; seconds per fold)")
    header = "| tagger | word acc | macro-F1 | train s | tag s | Δacc vs majority | Δacc vs fill |"
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for name, s in scores.items():
        acc = statistics.fmean(s.accuracy)
        gains = [f"{100 * (acc - base[k]):+5.1f}" if k in base else "n/a" for k in ("majority", "fill")]
        print(f"| {name} | {_mean_std(s.accuracy)} | {_mean_std(s.macro_f1)} | "
              f"{statistics.fmean(s.train_s):7.1f} | {statistics.fmean(s.tag_s):5.1f} | "
              f"{gains[0]} | {gains[1]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--subsample", type=int, default=None, help="keep about N narratives (whole images)")
    parser.add_argument("--kinds", nargs="+", default=["majority", "word-majority", "fill", "hmm",
                                                       "hmm-power1", "neural"], choices=list(VARIANTS))
    parser.add_argument("--oracle-bags", action="store_true", help="add the +oracle-bag rows")
    parser.add_argument("--only-folds", type=int, nargs="+", default=None,
                        help="run only these fold indices (same split; to spread folds over processes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=NeuralConfig.epochs)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine, 2 threads mostly wait)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    kinds = list(args.kinds) + (["hmm+oracle-bag", "neural+oracle-bag"] if args.oracle_bags else [])
    labels = read_sequence_labels(args.data_dir, "val_coco", tags="cleaned_tags")
    words, tags = [list(w) for w in labels.words], [list(t) for t in labels.tags or ()]
    image_ids = [item_id.rsplit("_", 1)[0] for item_id in labels.ids]  # {image}_{annotator}
    if args.subsample:
        keep = subsample_images(image_ids, args.subsample, args.seed)
        words, tags = [words[i] for i in keep], [tags[i] for i in keep]
        image_ids = [image_ids[i] for i in keep]
    bags = image_label_bags(image_ids, tags)
    fold_of = np.array(image_folds(image_ids, args.folds, args.seed))
    scores = {name: Scores() for name in kinds}
    with tempfile.TemporaryDirectory(prefix="bench_tagger_") as scratch:
        for fold in tqdm(args.only_folds or range(args.folds), desc="folds"):
            run_one_fold(fold, kinds, words, tags, bags, image_ids, fold_of, args, Path(scratch), scores)
    print_table(scores, len(words), args.folds, args.only_folds)
    return 0


def run_one_fold(fold: int, kinds: list[str], words, tags, bags, image_ids, fold_of, args, scratch: Path,
                 scores: dict[str, Scores]) -> None:
    train_idx, test_idx = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
    assert not {image_ids[i] for i in train_idx} & {image_ids[i] for i in test_idx}
    trained: dict = {}
    for name in kinds:
        acc, f1, train_s, tag_s = run_fold(name, words, tags, bags, train_idx, test_idx, args, scratch,
                                           trained)
        for column, value in zip(("accuracy", "macro_f1", "train_s", "tag_s"), (acc, f1, train_s, tag_s),
                                 strict=True):
            getattr(scores[name], column).append(value)
        tqdm.write(f"fold {fold}: {name:18s} acc {100 * acc:5.1f}  macro-F1 {100 * f1:5.1f}  "
                   f"train {train_s:6.1f}s  tag {tag_s:5.1f}s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""``trecs-eval pipeline train-tagger`` / ``eval-tagger``: train a tagger on TReCS word/tag files,
score a saved tagger against gold tags (word accuracy, macro-F1, per-label table)."""

from __future__ import annotations

import argparse
import logging
import time
from collections import defaultdict
from pathlib import Path

from reference_pipeline.tag.api import TAGGER_KINDS, load_tagger, save_tagger, train_tagger
from reference_pipeline.tag.files import read_image_ids, read_words_and_tags
from trecs_eval.errors import ConfigError
from trecs_eval.metrics.tag_accuracy import format_per_label_table, tag_accuracy

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``train-tagger`` and ``eval-tagger`` subcommands."""
    train = subparsers.add_parser("train-tagger", help="train a word -> COCO-Stuff label tagger")
    train.add_argument("--words", required=True, type=Path, help="TReCS words file, one narrative a line")
    train.add_argument("--tags", required=True, type=Path, help="TReCS tags file, one label per word")
    train.add_argument("--kind", default="neural", help=f"tagger kind: {', '.join(TAGGER_KINDS)}")
    train.add_argument("--out", required=True, type=Path, help="checkpoint to write (torch.save)")
    train.add_argument("--seed", type=int, default=0, help="seed for weights and batch order (neural)")
    train.add_argument("--ids", type=Path, default=None,
                       help="ids file (<image>_<annotator> per line): HMM label bags = union of the "
                            "gold tags of all narratives of the same image")
    train.add_argument("--transition-power", type=float, default=10.0, help="HMM transition exponent")
    train.add_argument("--epochs", type=int, default=None, help="neural: training epochs")
    train.set_defaults(handler=run_train)

    evaluate = subparsers.add_parser("eval-tagger", help="score a saved tagger against gold tags")
    evaluate.add_argument("--model", required=True, type=Path, help="checkpoint from train-tagger")
    evaluate.add_argument("--words", required=True, type=Path)
    evaluate.add_argument("--tags", required=True, type=Path)
    evaluate.add_argument("--per-label", action="store_true", help="print the per-label table")
    evaluate.set_defaults(handler=run_eval)


def image_label_bags(image_ids: list[str], tags: list[list[str]]) -> list[set[str]]:
    """Per narrative, the union of the gold tags of every narrative of the same image."""
    per_image: dict[str, set[str]] = defaultdict(set)
    for image, seq in zip(image_ids, tags, strict=True):
        per_image[image].update(seq)
    return [per_image[image] for image in image_ids]


def run_train(args: argparse.Namespace) -> int:
    words, tags = read_words_and_tags(args.words, args.tags)
    bags = image_label_bags(read_image_ids(args.ids, len(words)), tags) if args.ids else None
    neural_config = None
    if args.epochs is not None:
        if args.epochs < 1:
            raise ConfigError(f"--epochs must be ≥ 1, got {args.epochs}")
        from reference_pipeline.tag.neural import NeuralConfig

        neural_config = NeuralConfig(epochs=args.epochs)
    start = time.perf_counter()
    tagger = train_tagger(args.kind, words, tags, seed=args.seed, label_bags=bags,
                          progress=not getattr(args, "quiet", False),
                          transition_power=args.transition_power, neural_config=neural_config)
    save_tagger(tagger, args.out)
    print(f"trained {tagger.name} tagger on {len(words)} narratives in "
          f"{time.perf_counter() - start:.1f} s -> {args.out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    tagger = load_tagger(args.model)
    words, gold = read_words_and_tags(args.words, args.tags)
    predicted = [tagger.tag(seq) for seq in words]
    result = tag_accuracy(gold, predicted)
    print(f"tagger: {tagger.name}  narratives: {result.n_sequences}  words: {result.n_words}")
    print(f"word accuracy: {result.word_accuracy:.4f}")
    print(f"macro-F1:      {result.macro_f1:.4f}  (over {len(result.per_label)} labels)")
    if args.per_label:
        print(format_per_label_table(result.per_label))
    return 0

"""Reference TReCS benchmark on toyworld: throughput and the label-canvas table.

One run writes a toyworld train set (mask bank + tagger data) and a disjoint val set (another
seed), then:

1. **Throughput** at 256×256: images/s of ``trecs`` with the collage synthesizer (predicted
   tags, the demo's setting), next to two peers timed in the same run on the same items: the
   ``palette`` synthesizer (same Tag/Retrieve/Compose, trivial synthesis: the cost of
   composition alone) and the ``retrieval`` baseline (nearest training image by TF-IDF, the
   cheapest real system). Prints ratios, and the ratio to the 5 img/s target.
2. **Label-canvas table**: trace-canvas accuracy (95 % bootstrap CI over narratives), canvas
   pixel accuracy and mIoU vs the gold maps, for oracle tags, predicted tags and the
   ``ignore_traces`` ablation (targets: oracle >= 0.8, far above the ablation, predicted in
   between). The gold maps as canvases give the ceiling of the trace metric.

    .venv/bin/python benchmarks/bench_pipeline.py                 # n_train=300, n_val=100, 256 px
    .venv/bin/python benchmarks/bench_pipeline.py --n-train 100 --n-val 40 --size 128
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines.retrieval import RetrievalGenerator  # noqa: E402
from reference_pipeline.generator import TReCSGenerator  # noqa: E402
from trecs_eval.data.evalset import EvalItem, load_toyworld, read_gold_segmentation  # noqa: E402
from trecs_eval.data.toyworld import write_toyworld  # noqa: E402
from trecs_eval.generation.protocol import Generator, GeneratorContext  # noqa: E402
from trecs_eval.metrics.label_canvas import label_canvas_metrics  # noqa: E402

THROUGHPUT_TARGET = 5.0  # images/s at 256 px on 2 cores


def images_per_second(generator: Generator, items: list[EvalItem], repeats: int) -> float:
    """Best of ``repeats`` timed passes over ``items`` (after one untimed warm-up item)."""
    generator.generate(items[:1], seed=0)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        generator.generate(items, seed=0)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def throughput(items: list[EvalItem], context: GeneratorContext, repeats: int) -> None:
    systems = {
        "trecs collage (predicted tags)": TReCSGenerator({"tags": "predicted"}, context),
        "trecs palette (compose only)": TReCSGenerator({"tags": "predicted", "synthesizer": "palette"},
                                                       context),
        "retrieval baseline": RetrievalGenerator({}, context),
    }
    rates = {name: images_per_second(g, items, repeats) for name, g in systems.items()}
    ours = rates["trecs collage (predicted tags)"]
    side = context.image_size
    print(f"\nthroughput at {side}x{side}, {len(items)} images, best of {repeats}:")
    for name, rate in rates.items():
        print(f"  {name:34s} {rate:8.1f} img/s   collage/this = {ours / rate:5.2f}")
    print(f"  collage vs target {THROUGHPUT_TARGET:.0f} img/s: {ours / THROUGHPUT_TARGET:.1f}x")


def canvas_table(items: list[EvalItem], context: GeneratorContext, n_resamples: int,
                 taggers: list[str]) -> None:
    rows: dict[str, dict | None] = {"gold maps (ceiling)": None, "trecs oracle tags": {"tags": "oracle"}}
    rows.update({f"trecs predicted tags ({t})": {"tags": "predicted", "tagger": t} for t in taggers})
    rows["trecs oracle, ignore_traces"] = {"tags": "oracle", "ignore_traces": True}
    rows["trecs predicted, ignore_traces"] = {"tags": "predicted", "ignore_traces": True}
    print(f"\nlabel-canvas accuracy on toyworld val ({len(items)} narratives, 95% bootstrap CI):")
    print(f"  {'system':32s} {'trace-canvas acc':>24s} {'pixel acc':>10s} {'mIoU':>7s}")
    for name, params in rows.items():
        if params is None:
            canvases = {item.item_id: read_gold_segmentation(item) for item in items}
        else:
            generator = TReCSGenerator({**params, "synthesizer": "palette"}, context)
            generations = generator.generate(items, seed=0)
            canvases = {item.item_id: g.canvas for item, g in zip(items, generations, strict=True)}
        results = {r.name: r for r in label_canvas_metrics(items, canvases, n_resamples=n_resamples)}
        trace = results["trace_canvas_accuracy"]
        print(f"  {name:32s} {trace.value:6.3f} [{trace.ci_low:.3f}, {trace.ci_high:.3f}]   "
              f"{results['canvas_pixel_accuracy'].value:10.3f} {results['canvas_miou'].value:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-val", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7, help="train seed; val uses seed + 1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-resamples", type=int, default=1000)
    parser.add_argument("--taggers", nargs="+", default=["fill", "neural"],
                        help="tagger kinds for the predicted-tag rows (the first is the trecs default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_toyworld(root / "train", n=args.n_train, seed=args.seed, image_size=args.size, shifted=False,
                       progress=False)
        write_toyworld(root / "val", n=args.n_val, seed=args.seed + 1, image_size=args.size, shifted=False,
                       progress=False)
        print(f"toyworld train n={args.n_train} (seed {args.seed}), val n={args.n_val} "
              f"(seed {args.seed + 1}), {args.size} px: written in {time.perf_counter() - start:.1f} s")
        items = list(load_toyworld(root / "val").items)
        context = GeneratorContext(work_dir=root / "work", train_dir=root / "train", image_size=args.size)
        start = time.perf_counter()
        TReCSGenerator({"tags": "predicted"}, context)
        print(f"trecs set-up (mask bank + tagger training): {time.perf_counter() - start:.1f} s")
        throughput(items, context, args.repeats)
        canvas_table(items, context, args.n_resamples, args.taggers)


if __name__ == "__main__":
    main()

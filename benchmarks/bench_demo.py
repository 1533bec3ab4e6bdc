"""The demo's wall time next to what its forward passes cost at the plain-forward rate.

    python benchmarks/bench_demo.py            # the real demo (n = 300), cold caches
    python benchmarks/bench_demo.py --n 100    # a quicker, smaller demo (R-precision needs >= 100)

One process, in this order:

1. the demo, cold (fresh feature cache, fresh run directory, same code path as ``trecs-eval
   demo``), instrumented: every Inception / CLIP-image / CLIP-text extraction call is counted
   (items that went through a forward pass) and timed (decode + forward + cache writes);
2. the plain-forward rate of the same networks on in-memory batches (no I/O, no decode, no
   cache): Inception at 299 px with the demo's weights, batch 32, first with glibc's default
   malloc settings, then with ``keep_malloc_buffers``, then also in the demo's layout (its
   ``inception_layout`` opt-in, NHWC); CLIP ViT-B-32 image and text towers, batch 32;
3. the budget: ``overhead = wall / (sum of items / plain rate) - 1`` (target <= 15 %; the plain
   rate is torch-fidelity's NCHW forward, so a faster forward of ours counts in our favour), the
   same over our own forward rate (what is left to win outside it), and where
   the rest goes: per-stage timings of the run, extraction calls beyond their plain cost, and
   everything outside the extraction calls (toyworld, generation, metrics, report).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 32
PLAIN_BATCHES = 3  # timed batches per network (after one warm-up batch)
OVERHEAD_TARGET = 0.15


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
                "unknown")


class Meter:
    """Counts items and seconds of wrapped extraction methods."""

    def __init__(self) -> None:
        self.items: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: type, method: str, kind: str) -> None:
        original: Callable[..., Any] = getattr(owner, method)

        def timed(obj: Any, items: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(obj, items, *args, **kwargs)
            finally:
                self.seconds[kind] += time.perf_counter() - start
                self.items[kind] += len(items)

        setattr(owner, method, timed)


def run_demo(out: Path, n: int, meter: Meter) -> tuple[float, dict[str, float], dict[str, Any]]:
    """Wall seconds, stage timings and extractor identities of one cold demo."""
    import argparse as ap

    from trecs_eval.commands.demo import demo_command
    from trecs_eval.features.clip import ClipEmbedder
    from trecs_eval.features.inception import InceptionExtractor
    from trecs_eval.results import read_results

    meter.wrap(InceptionExtractor, "_compute", "inception")
    meter.wrap(ClipEmbedder, "_embed_images", "clip_image")
    meter.wrap(ClipEmbedder, "_embed_texts", "clip_text")
    start = time.perf_counter()
    demo_command(ap.Namespace(out=out, n=n, uncalibrated_weights=False, quiet=True))
    wall = time.perf_counter() - start
    results = read_results(out)
    return wall, dict(results.timings), dict(results.extractors)


def _rate(forward: Callable[[], object], batch: int) -> float:
    forward()  # warm-up: first-call allocations and oneDNN primitive creation
    start = time.perf_counter()
    for _ in range(PLAIN_BATCHES):
        forward()
    return PLAIN_BATCHES * batch / (time.perf_counter() - start)


def inception_plain_rate(weights: str | None, malloc_tuned: bool,
                         layout: torch.memory_format = torch.contiguous_format) -> float:
    """img/s of torch-fidelity's Inception forward on in-memory batches (``layout``: NCHW is the
    plain forward; the demo opts into NHWC, see :func:`~trecs_eval.features.inception.memory_format`)."""
    from trecs_eval.features.inception import inception_forward, keep_malloc_buffers, load_inception
    from trecs_eval.features.weights import resolve_inception_weights

    if malloc_tuned:
        keep_malloc_buffers()
    resolved = resolve_inception_weights(weights, uncalibrated=weights is None, seed=0)
    model = load_inception(resolved, torch.device("cpu")).to(memory_format=layout)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (BATCH, 3, 299, 299))).float()
    x = x.contiguous(memory_format=layout)
    with torch.inference_mode():
        return _rate(lambda: inception_forward(model, x, logits=resolved.has_classifier), BATCH)


def clip_plain_rates() -> tuple[float, float]:
    from trecs_eval.features.clip import ClipEmbedder

    clip = ClipEmbedder(uncalibrated=True, device="cpu", progress=False)  # same cost as real weights
    pixels = torch.randn(BATCH, 3, 224, 224)
    tokens = clip.tokenizer(["a narrative of some length about a scene"] * BATCH, clip.context_length)
    with torch.inference_mode():
        image = _rate(lambda: clip.model.encode_image(pixels), BATCH)
        text = _rate(lambda: clip.model.encode_text(tokens), BATCH)
    return image, text


def report(wall: float, timings: dict[str, float], meter: Meter, rates: dict[str, float],
           own_inception_rate: float) -> None:
    plain = {k: meter.items[k] / rates[k] for k in ("inception", "clip_image", "clip_text")}
    budget = sum(plain.values())
    overhead = wall / budget - 1
    ok = "OK" if overhead <= OVERHEAD_TARGET else "over target"
    own = budget - plain["inception"] + meter.items["inception"] / own_inception_rate
    print(f"demo wall (cold)         {wall:8.1f} s")
    for kind, seconds in plain.items():
        print(f"  {kind:22s} {meter.items[kind]:6d} items / {rates[kind]:6.2f} per s = {seconds:7.1f} s "
              f"at the plain rate; in the demo {meter.seconds[kind]:7.1f} s")
    print(f"forward passes at plain rate {budget:8.1f} s")
    print(f"overhead                 {100 * overhead:8.1f} %  "
          f"(target <= {100 * OVERHEAD_TARGET:.0f} %: {ok})")
    print(f"forward passes at our rate {own:6.1f} s  (Inception at {own_inception_rate:.2f} img/s, "
          f"our layout); overhead over them {100 * (wall / own - 1):.1f} %")
    extraction = sum(meter.seconds.values())
    print("where the rest goes:")
    print(f"  extraction calls beyond plain forward  {extraction - budget:8.1f} s "
          "(decode/resize, cache reads+writes, batching, slower in-situ forward)")
    print(f"  outside extraction calls               {wall - extraction:8.1f} s")
    for stage, seconds in timings.items():
        print(f"    stage {stage:28s} {seconds:8.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="evaluation narratives (default 300: the demo)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from trecs_eval.features.inception import memory_format

    load = os.getloadavg()
    print(f"# CPU {cpu_model()}, {os.cpu_count()} cores, {args.threads} torch threads, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; demo n = {args.n}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        os.environ["TRECS_EVAL_CACHE"] = str(Path(tmp) / "cache")  # cold: nothing cached
        meter = Meter()
        wall, timings, identities = run_demo(Path(tmp) / "demo", args.n, meter)
        inception = identities.get("inception", {})
        weights = None if inception.get("uncalibrated") else _demo_inception_weights()
        print(f"# Inception weights: {inception.get('extra', {}).get('weights_format', '?')} "
              f"{inception.get('weights_sha256', '?')[:12]} (uncalibrated: "
              f"{inception.get('uncalibrated')}); CLIP uncalibrated: "
              f"{identities.get('clip', {}).get('uncalibrated')}", flush=True)
        untuned = inception_plain_rate(weights, malloc_tuned=False)
        tuned = inception_plain_rate(weights, malloc_tuned=True)
        own = inception_plain_rate(weights, malloc_tuned=True, layout=memory_format(demo_layout()))
        print(f"# plain Inception forward: {untuned:.2f} img/s default malloc, {tuned:.2f} img/s "
              f"with keep_malloc_buffers; {own:.2f} img/s in the demo's {demo_layout()} layout too (the "
              "demo's settings)", flush=True)
        clip_image, clip_text = clip_plain_rates()
        rates = {"inception": tuned, "clip_image": clip_image, "clip_text": clip_text}
        report(wall, timings, meter, rates, own)
    load = os.getloadavg()
    print(f"# load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def demo_layout() -> str:
    from trecs_eval.commands.demo import demo_config

    return demo_config(Path("unused"), 100, uncalibrated=False).extractors.inception_layout


def _demo_inception_weights() -> str | None:
    from trecs_eval.commands.demo import standard_weights

    found, _ = standard_weights()
    return None if found is None else str(found)


if __name__ == "__main__":
    main()

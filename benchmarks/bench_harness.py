"""FID/KID intervals of a run: the engine's delta method vs a percentile bootstrap, same inputs.

    .venv/bin/python benchmarks/bench_harness.py [--n 300] [--resamples 100]

The engine (what runs and ``trecs-eval metrics`` use) gives FID and KID a symmetric delta-method
interval from exact influence values (:mod:`trecs_eval.metrics.intervals`): no resampling. The
peer is the percentile bootstrap over generated items through the exact factorised resample
statistics of :mod:`trecs_eval.metrics.resample` (an n×n problem per resample), the method the
engine used before. Prints wall seconds of each, both intervals and their
half-widths: the bootstrap's interval of FID sits above the estimate (duplicated images shrink
the effective sample, and FID is biased upwards at small n), the delta method's is centred on it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.metrics import engine, resample
from trecs_eval.metrics.bootstrap import bootstrap_statistic_ci

D_POOL, D_LOGITS = 2048, 1008


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def features(n: int, seed: int, shift: float) -> InceptionFeatures:
    rng = np.random.default_rng(seed)
    identity = ExtractorIdentity(name="bench", weights_sha256="0" * 64, layers=("2048",), preprocessing="tf1")
    return InceptionFeatures(pool=(rng.normal(size=(n, D_POOL)) + shift).astype(np.float32),
                             logits=rng.normal(size=(n, D_LOGITS)).astype(np.float32),
                             paths=tuple(str(i) for i in range(n)), identity=identity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="generated and reference images (default 300)")
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap resamples (default 100)")
    args = parser.parse_args()
    gen, ref = features(args.n, 0, 0.1), features(args.n, 1, 0.0)
    reference = resample.ReferenceSet(ref.pool)
    peers = {"fid": resample.fid_statistic(gen.pool, reference),
             "kid": resample.kid_statistic(gen.pool, reference)}
    for name in ("fid", "kid"):
        peer_s, peer_ci = timed(lambda name=name: bootstrap_statistic_ci(
            args.n, peers[name], args.resamples, 0, 0.05))
        ours_s, mine = timed(lambda name=name: engine.image_metrics(gen, ref, [name], seed=0)[0])
        low, high = peer_ci  # type: ignore[misc]
        print(f"{name} n={args.n}: bootstrap ({args.resamples} resamples) {peer_s:.2f} s, "
              f"delta method {ours_s:.2f} s; value {mine.value:.4g}; "
              f"delta [{mine.ci_low:.4g}, {mine.ci_high:.4g}] vs bootstrap [{low:.4g}, {high:.4g}]; "
              f"half-widths {(mine.ci_high - mine.ci_low) / 2:.3g} vs {(high - low) / 2:.3g}")


if __name__ == "__main__":
    main()

"""FID/KID resample statistics: direct per-resample recomputation vs the metrics engine, same inputs.

    .venv/bin/python benchmarks/bench_harness.py [--n 300] [--resamples 20]

The peer recomputes each bootstrap resample the direct way (FID against the reference statistics
through FidAgainstReference: a d×d square root once, then an n×d×d product per resample; KID
re-drawing its subsets); the engine (what runs and ``trecs-eval metrics`` use) resamples through
the exact factorised n×n statistics of :mod:`trecs_eval.metrics.resample`. Both give the same
resample values (tests/unit/test_measure_images.py). Prints wall and CPU seconds of each, one
run, same threads, and the ratios.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.metrics import engine, fid, kid
from trecs_eval.metrics.bootstrap import bootstrap_statistic_ci

D_POOL, D_LOGITS = 2048, 1008


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def features(n: int, seed: int, shift: float) -> InceptionFeatures:
    rng = np.random.default_rng(seed)
    identity = ExtractorIdentity(name="bench", weights_sha256="0" * 64, layers=("2048",), preprocessing="tf1")
    return InceptionFeatures(pool=(rng.normal(size=(n, D_POOL)) + shift).astype(np.float32),
                             logits=rng.normal(size=(n, D_LOGITS)).astype(np.float32),
                             paths=tuple(str(i) for i in range(n)), identity=identity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="generated and reference images (default 300)")
    parser.add_argument("--resamples", type=int, default=20, help="bootstrap resamples (default 20)")
    args = parser.parse_args()
    gen, ref = features(args.n, 0, 0.1), features(args.n, 1, 0.0)
    # Peer: each resample recomputed the direct way (FID against the reference statistics, a d x d
    # product per resample; KID re-drawing its 100 subsets, as the engine did before).
    # Ours: the engine (factorised statistics).
    slow_fid = fid.FidAgainstReference(fid.features_to_statistics(ref.pool))
    kernels = kid.KidKernels(gen.pool, ref.pool)
    peers = {"fid": lambda idx: slow_fid(gen.pool[idx]),
             "kid": lambda idx: kernels.kid(seed=0, n_subsets=kid.DEFAULT_SUBSETS, rows1=idx).mean}
    for name in ("fid", "kid"):
        peer_wall, peer_cpu, peer_ci = timed(lambda name=name: bootstrap_statistic_ci(
            args.n, peers[name], args.resamples, 0, 0.05))
        our_wall, our_cpu, mine = timed(lambda name=name: engine.image_metrics(
            gen, ref, [name], seed=0, n_bootstrap=args.resamples)[0])
        print(f"{name} n={args.n} resamples={args.resamples}: "
              f"per-resample recomputation {peer_wall:.2f} s wall / {peer_cpu:.2f} s CPU, "
              f"engine {our_wall:.2f} s wall / {our_cpu:.2f} s CPU; "
              f"speed-up {peer_wall / our_wall:.1f}x wall, {peer_cpu / our_cpu:.1f}x CPU; "
              f"CI [{mine.ci_low:.4g}, {mine.ci_high:.4g}] vs [{peer_ci[0]:.4g}, {peer_ci[1]:.4g}]")


if __name__ == "__main__":
    main()

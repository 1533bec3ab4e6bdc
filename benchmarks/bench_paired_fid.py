"""Regression-gate FID resamples: trecs_eval.metrics.resample.fid_statistic vs recomputing FID per resample.

    .venv/bin/python benchmarks/bench_paired_fid.py [--n 200] [--m 1000] [--d 2048] [--resamples 10]

A paired bootstrap of FID needs FID of ``features[idx]`` against a fixed reference set for
every resample ``idx`` (1,000 by default, for each of the two runs). Peers, timed in the same
process on the same resamples: trecs_eval.metrics.fid.FidAgainstReference (sqrt of S_ref once,
then an n x d x d product and an n x n eigenproblem per resample), features_to_fid (everything
per resample) and torch-fidelity's fid_features_to_statistics + fid_statistics_to_metric
(eigvals of a non-symmetric d x d product; slow, so timed on --tf-resamples resamples, 0 skips
it). Ours also projects the features on the reference factor once, leaving a gather and a
min(n, k)-sized eigenproblem per resample. Prints median ms per resample (robust to other
processes on a shared machine), ratios (peer / ours) and the largest relative disagreement.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from trecs_eval.metrics.fid import FidAgainstReference, features_to_fid, features_to_statistics
from trecs_eval.metrics.resample import ReferenceSet, fid_statistic


def _time(fn: Callable[[np.ndarray], float], resamples: list[np.ndarray]) -> tuple[float, list[float]]:
    """Median seconds per call and the values."""
    seconds, values = [], []
    for idx in resamples:
        start = time.perf_counter()
        values.append(float(fn(idx)))
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), values


def _worst(ours: list[float], peer: list[float]) -> float:
    return max(abs(a - b) / abs(b) for a, b in zip(ours, peer, strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="generated items")
    parser.add_argument("--m", type=int, default=1000, help="reference items")
    parser.add_argument("--d", type=int, default=2048, help="feature dimension (Inception pool3: 2048)")
    parser.add_argument("--resamples", type=int, default=10, help="resamples timed for each method")
    parser.add_argument("--tf-resamples", type=int, default=1, help="resamples timed for torch-fidelity")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    feats = rng.normal(0.1, 1.0, (args.n, args.d))
    ref = rng.normal(0.0, 1.0, (args.m, args.d))
    resamples = [rng.integers(0, args.n, args.n) for _ in range(args.resamples)]

    start = time.perf_counter()
    statistic = fid_statistic(feats, ReferenceSet(ref))
    setup = time.perf_counter() - start
    ours, ours_values = _time(statistic, resamples)
    start = time.perf_counter()
    against = FidAgainstReference(features_to_statistics(ref))
    setup_peer = time.perf_counter() - start
    fixed, fixed_values = _time(lambda idx: against(feats[idx]), resamples)
    project, project_values = _time(lambda idx: features_to_fid(feats[idx], ref)[0], resamples)
    threads = torch.get_num_threads()
    print(f"n={args.n} m={args.m} d={args.d}, {args.resamples} resamples, torch threads={threads}")
    print("ratio = peer median time / our median time, same resamples, same process")
    print(f"ours (resample.fid_statistic): {ours * 1e3:8.1f} ms/resample (+ {setup:.2f} s once)")
    print(f"FidAgainstReference:                 {fixed * 1e3:8.1f} ms/resample (+ {setup_peer:.2f} s once)"
          f"  ratio {fixed / ours:5.1f}x  max rel diff {_worst(ours_values, fixed_values):.1e}")
    print(f"features_to_fid:                     {project * 1e3:8.1f} ms/resample"
          f"  ratio {project / ours:5.1f}x  max rel diff {_worst(ours_values, project_values):.1e}")
    if args.tf_resamples > 0:
        ref_stats = fid_features_to_statistics(torch.from_numpy(ref))

        def torch_fidelity_fid(idx: np.ndarray) -> float:
            stats = fid_features_to_statistics(torch.from_numpy(feats[idx]))
            return fid_statistics_to_metric(stats, ref_stats, verbose=False)["frechet_inception_distance"]

        peer, peer_values = _time(torch_fidelity_fid, resamples[: args.tf_resamples])
        print(f"torch-fidelity:                      {peer * 1e3:8.1f} ms/resample"
              f"  ratio {peer / ours:5.1f}x  max rel diff {_worst(ours_values, peer_values):.1e}")
    print(f"1000-resample gate, one system, 2 runs: ours {2000 * ours + 2 * setup:.0f} s, "
          f"FidAgainstReference {2000 * fixed + 2 * setup_peer:.0f} s, "
          f"features_to_fid {2000 * project:.0f} s")


if __name__ == "__main__":
    main()

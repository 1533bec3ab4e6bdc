"""Coverage of the human win-rate interval by simulation, beside the intervals it replaces.

One system pair judged under a study-shaped design (``items × judgments_per_pair`` judgments,
each item's judgments by distinct raters, loads balanced), with item and rater effects on the
win probability and a tie rate (the model of :mod:`trecs_eval.human.power`). The true win rate
(ties split) is computed by Monte Carlo over the effect distributions (10^6 draws). Intervals:

* ``two-way``: ours, cluster-robust by item and rater (Cameron–Gelbach–Miller), t(min G − 1);
* ``item``: one-way cluster-robust by item, t(G_item − 1);
* ``rater``: one-way cluster-robust by rater, t(G_rater − 1);
* ``naive``: judgments treated as independent, normal.

    python benchmarks/bench_human_coverage.py            # 1000 replications per design
    python benchmarks/bench_human_coverage.py --quick    # what the test runs (seconds)

Target: within [0.93, 0.97] at nominal 0.95 with 1000 replications (MC sd of a coverage ~0.007).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats

from trecs_eval.human.power import simulate_pair
from trecs_eval.human.stats import _cluster_sum_sq, two_way_mean

TRUTH_DRAWS = 1_000_000


@dataclass(frozen=True)
class Design:
    items: int
    raters: int
    per_item: int
    effect: float
    tie_rate: float
    item_sd: float
    rater_sd: float


DESIGNS = (
    Design(50, 10, 5, 0.05, 0.1, 0.10, 0.05),
    Design(100, 20, 5, 0.05, 0.1, 0.10, 0.05),
    Design(300, 50, 5, 0.05, 0.1, 0.10, 0.05),
    Design(100, 20, 5, 0.05, 0.1, 0.05, 0.15),  # strong rater effects
    Design(100, 20, 5, 0.05, 0.1, 0.20, 0.02),  # strong item effects
    Design(60, 6, 3, 0.10, 0.2, 0.10, 0.10),  # few raters
)
QUICK = (Design(60, 12, 5, 0.05, 0.1, 0.05, 0.15),)


def true_win_rate(d: Design, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    p = np.clip(0.5 + d.effect / (1 - d.tie_rate) + rng.normal(0, d.item_sd, TRUTH_DRAWS)
                + rng.normal(0, d.rater_sd, TRUTH_DRAWS), 0.01, 0.99)
    return float((1 - d.tie_rate) * p.mean() + d.tie_rate * 0.5)


def _one_way(y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    s, g = _cluster_sum_sq(y - y.mean(), groups)
    half = stats.t.ppf(0.975, g - 1) * math.sqrt(s) / len(y)
    return y.mean() - half, y.mean() + half


def coverage(d: Design, reps: int, seed: int) -> dict[str, float]:
    truth = true_win_rate(d, seed)
    rng = np.random.default_rng(seed + 1)
    hits = {"two-way": 0, "item": 0, "rater": 0, "naive": 0}
    for _ in range(reps):
        y, items, raters = simulate_pair(d.items, d.raters, d.per_item, d.effect, d.tie_rate, d.item_sd,
                                         d.rater_sd, rng)
        est = two_way_mean(y, items, raters)
        half = 1.96 * y.std(ddof=1) / math.sqrt(len(y))
        intervals = {"two-way": (est.low, est.high), "item": _one_way(y, items), "rater": _one_way(y, raters),
                     "naive": (y.mean() - half, y.mean() + half)}
        for name, (low, high) in intervals.items():
            hits[name] += int(low <= truth <= high)
    return {name: n / reps for name, n in hits.items()}


def main(argv: list[str] | None = None) -> list[tuple[Design, dict[str, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    designs, reps = (QUICK, min(args.reps, 200)) if args.quick else (DESIGNS, args.reps)
    start = time.perf_counter()
    print(f"coverage of 95 % win-rate intervals, {reps} replications per design")
    print("| items | raters | per item | item sd | rater sd | ties | two-way (ours) | item | rater | naive |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for d in designs:
        cov = coverage(d, reps, args.seed)
        rows.append((d, cov))
        print(f"| {d.items} | {d.raters} | {d.per_item} | {d.item_sd} | {d.rater_sd} | {d.tie_rate} | "
              f"{cov['two-way']:.3f} | {cov['item']:.3f} | {cov['rater']:.3f} | {cov['naive']:.3f} |")
    print(f"({time.perf_counter() - start:.0f} s)")
    return rows


if __name__ == "__main__":
    main()

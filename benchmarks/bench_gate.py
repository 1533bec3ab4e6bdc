"""The regression gate's false-alarm rate (per metric and family-wise) and power, by simulation,
through the shipped ``reports.compare.compare_runs`` itself (no re-implementation).

Each replication builds two runs in memory (:class:`reports.load.LoadedRun`, the object the gate
reads from a run directory) of one system with six metrics, one of each kind the gate tests:

* FID, KID, IS on Gaussian "features" (reference ~ N(0, diag(lam)), generated ~ N(mu, scale lam),
  lam_k ∝ 1/k; IS logits = features @ a fixed random matrix);
* CLIPScore, a per-item mean, and trace-canvas accuracy, a per-item mean with ~5 % of the items
  without a value (the same items in both runs, as narratives without a tagged word);
* canvas pixel accuracy, a pooled ratio of per-item pixel counts of unequal sizes.

Every image has ``k`` narratives (default 2) that share the image's effect on every metric, so
ignoring clusters would be liberal. Run B is drawn like A (H0: items paired, correlation 0.5 for
features, shared image effects for scores) or moved (H1: generated mean + ``gate_shift`` per
dimension, scores + ``score_shift``, accuracies + ``accuracy_shift``). Reported: the rejection
rate per metric at alpha = 0.05 (correction none), the family-wise rate of *any* significant
row under H0 with each correction, the rate at which the gate exits 1 under H0 (worsening only,
Holm), and the power under H1.

    python benchmarks/bench_gate.py                   # d=64, 200 images x 2 narratives, 200 reps
    python benchmarks/bench_gate.py --quick           # seconds: what the test runs

Target: alpha and FWER <= 0.05 up to Monte Carlo error (200 reps: sd of a 0.05 rate ~0.015).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reports.compare import BETTER, WORSE, compare_runs
from reports.load import LoadedRun, declared_info
from trecs_eval.data.narratives import Narrative
from trecs_eval.metrics.label_canvas import N_LABEL_IDS
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import RunResults, SystemInfo

ALPHA = 0.05
N_CLASSES = 20
SYSTEM = "sys"
METRICS = ("fid", "kid", "is", "clip_score", "trace_canvas_accuracy", "canvas_pixel_accuracy")
CORRECTIONS = ("holm", "bonferroni", "none")


@dataclass(frozen=True)
class World:
    """Dimension, images, narratives per image, and the H1 shifts."""

    d: int = 64
    n_images: int = 200
    per_image: int = 2
    mean_shift: float = 0.15
    scale: float = 1.5
    gate_shift: float = 0.03
    score_shift: float = 0.15
    accuracy_shift: float = 0.03
    missing_share: float = 0.05

    @property
    def n(self) -> int:
        return self.n_images * self.per_image


def _spectrum(d: int) -> np.ndarray:
    lam = 1.0 / np.arange(1, d + 1)
    return lam * (d / 4.0) / lam.sum()


def _features(rng: np.random.Generator, w: World, shared: np.ndarray, shift: float) -> np.ndarray:
    """Generated features: half of each item's variance is its image's (narratives of one image)."""
    own = rng.standard_normal((w.n, w.d))
    z = math.sqrt(0.5) * np.repeat(shared, w.per_image, axis=0) + math.sqrt(0.5) * own
    return w.mean_shift + shift + z * np.sqrt(w.scale * _spectrum(w.d))


def _scores(rng: np.random.Generator, w: World, image_effect: np.ndarray, shift: float) -> np.ndarray:
    system_effect = rng.normal(0.0, 0.5, w.n_images)  # this run's image-level luck
    return np.repeat(image_effect + system_effect, w.per_image) + rng.normal(0.0, 0.5, w.n) + shift


def _counts(rng: np.random.Generator, w: World, image_effect: np.ndarray, gold: np.ndarray,
            shift: float) -> np.ndarray:
    """Per-item class counts (label 1 only): TP ~ Binomial(G, p_item), P = TP + false positives."""
    logit = np.repeat(image_effect + rng.normal(0.0, 0.3, w.n_images), w.per_image) + rng.normal(0, 0.3, w.n)
    p = np.clip(1.0 / (1.0 + np.exp(-logit)) + shift, 0.0, 1.0)
    counts = np.zeros((w.n, 3, N_LABEL_IDS), dtype=np.int32)
    tp = rng.binomial(gold, p)
    counts[:, 0, 1], counts[:, 1, 1], counts[:, 2, 1] = tp, gold, tp + rng.binomial(gold - tp, 0.2)
    return counts


def _run(label: str, w: World, features: dict[str, np.ndarray], reference: dict[str, np.ndarray],
         samples: pd.DataFrame, narratives: dict[str, Narrative]) -> LoadedRun:
    infos = {name: declared_info(name) for name in METRICS}
    metrics = tuple(MetricResult(name, 0.0, infos[name].higher_is_better, w.n, system=SYSTEM, seed=0,
                                 params={"splits": 10} if name == "is" else {}) for name in METRICS)
    results = RunResults(run_id=label, created="simulated", config_hash="0" * 64, config={}, dataset={},
                         systems=(SystemInfo(SYSTEM, SYSTEM, "1", {}, {}, w.n),), metrics=metrics,
                         metric_info=infos)
    return LoadedRun(Path(label), results, samples, narratives, {SYSTEM: features, "reference": reference})


def _pair(w: World, rep: int, h1: bool) -> tuple[LoadedRun, LoadedRun]:
    rng = np.random.default_rng([w.d, w.n, rep])
    classes = np.random.default_rng(7).normal(0.0, 3.0 / math.sqrt(w.d), (w.d, N_CLASSES))
    ids = [f"img{i // w.per_image:05d}_{i % w.per_image}" for i in range(w.n)]
    narratives = {item: Narrative("sim", item.split("_")[0], int(item.split("_")[1]), "") for item in ids}
    reference = {"inception_pool": rng.standard_normal((w.n_images, w.d)) * np.sqrt(_spectrum(w.d))}
    shared, image_score, image_canvas = (rng.standard_normal((w.n_images, w.d)), rng.normal(0, 1, w.n_images),
                                         rng.normal(1.0, 0.7, w.n_images))
    gold = rng.integers(500, 5000, w.n)  # unequal image sizes: pooled != mean of ratios
    no_value = rng.random(w.n) < w.missing_share
    runs = []
    for label, moved in (("A", False), ("B", h1)):
        if label == "B":  # paired: half of B's item variance is A's
            shared = math.sqrt(0.5) * shared + math.sqrt(0.5) * rng.standard_normal(shared.shape)
        pool = _features(rng, w, shared, w.gate_shift if moved else 0.0)
        moved_by = w.accuracy_shift if moved else 0.0
        accuracy = 1.0 / (1.0 + np.exp(-_scores(rng, w, image_canvas, 0.0))) + moved_by
        samples = pd.DataFrame({
            "item_id": ids, "system": SYSTEM,
            "clip_score": _scores(rng, w, image_score, w.score_shift if moved else 0.0),
            "trace_canvas_accuracy": np.where(no_value, np.nan, accuracy),
        })
        features = {"item_ids": np.array(ids), "inception_pool": pool, "inception_logits": pool @ classes,
                    "canvas_counts": _counts(rng, w, image_canvas, gold, moved_by)}
        runs.append(_run(label, w, features, reference, samples, narratives))
    return runs[0], runs[1]


def simulate(w: World, reps: int) -> dict[str, float]:
    """Rejection rates: ``H0 <metric>`` (none), ``H0 any (<correction>)``, ``H0 exit 1``, ``H1 <metric>``."""
    hits: dict[str, list[bool]] = {}

    def hit(key: str, flag: bool) -> None:
        hits.setdefault(key, []).append(bool(flag))

    for rep in range(reps):
        a, b = _pair(w, rep, h1=False)
        for correction in CORRECTIONS:
            gate = compare_runs(a, b, correction=correction, alpha=ALPHA)
            if gate.untestable:  # the simulated runs are complete: an untestable row is a bug here
                raise RuntimeError(f"untestable rows in a simulated gate: {gate.untestable}")
            hit(f"H0 any ({correction})", any(r.verdict in (BETTER, WORSE) for r in gate.rows))
            if correction == "none":
                for r in gate.rows:
                    hit(f"H0 {r.metric}", r.verdict in (BETTER, WORSE))
            if correction == "holm":
                hit("H0 exit 1", gate.exit_code == 1)
        a, b = _pair(w, rep, h1=True)
        for r in compare_runs(a, b, correction="none", alpha=ALPHA).rows:
            hit(f"H1 {r.metric}", r.verdict in (BETTER, WORSE))
    return {key: float(np.mean(flags)) for key, flags in hits.items()}


def markdown(rows: list[tuple[World, int, dict[str, float], float]]) -> str:
    names = "/".join(m.replace("canvas_pixel_accuracy", "pixacc").replace("trace_canvas_accuracy", "trace")
                     for m in METRICS)
    head = (f"| d | images × narratives | reps | α {names} (none) | FWER holm / bonferroni / none "
            f"| gate exit 1 under H0 (holm) | power {names} | s |")
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for w, reps, r, seconds in rows:
        alpha = "/".join(f"{r[f'H0 {m}']:.3f}" for m in METRICS)
        fwer = " / ".join(f"{r[f'H0 any ({c})']:.3f}" for c in CORRECTIONS)
        power = "/".join(f"{r[f'H1 {m}']:.2f}" for m in METRICS)
        lines.append(f"| {w.d} | {w.n_images} × {w.per_image} | {reps} | {alpha} | {fwer} "
                     f"| {r['H0 exit 1']:.3f} | {power} | {seconds:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--images", type=int, nargs="+", default=[200])
    parser.add_argument("--per-image", type=int, default=2)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="d=8, 60 images x 2, 60 reps (seconds)")
    args = parser.parse_args()
    grid = [World(8, 60, 2)] if args.quick else [World(args.d, n, args.per_image) for n in args.images]
    reps = 60 if args.quick else args.reps
    rows = []
    for world in grid:
        start = time.perf_counter()
        rows.append((world, reps, simulate(world, reps), time.perf_counter() - start))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()

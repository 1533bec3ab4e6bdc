"""Cost of the regression gate (``compare_runs``) at demo and LN-COCO size, and how its analytic
FID/KID/IS tests agree with the full paired bootstrap they replace.

Two in-memory runs (A, and B = A's features with fresh per-item noise, paired item by item)
with Inception-sized features (pool 2048-d, logits 1008), per-item metrics (clip_score,
r_precision, trace_canvas_accuracy) and LN-COCO's clustering (8,573 narratives over 4,999
images). The runs are handed to ``compare_runs`` as loaded runs (reading run directories is
not what is timed: np.load of the features costs seconds).

    python benchmarks/bench_compare.py                   # demo size (300 items, 5 systems) + agreement
    python benchmarks/bench_compare.py --ln-coco         # also 8,573 items, 4 systems
    python benchmarks/bench_compare.py --agreement-resamples 200

Agreement: at demo size, the paired percentile bootstrap (resampling items, 200 resamples) of
FID, KID and IS deltas on the same data: the ratio of standard errors
(delta method or t over splits / bootstrap sd) and both p-values, for a null pair and a
shifted pair.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from reports.compare import compare_runs
from reports.load import LoadedRun
from trecs_eval.data.narratives import Narrative
from trecs_eval.metrics import intervals
from trecs_eval.metrics.bootstrap import paired_bootstrap
from trecs_eval.metrics.inception_score import logits_to_inception_score
from trecs_eval.metrics.resample import ReferenceSet, fid_statistic, kid_statistic
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import RunResults, SystemInfo

POOL, LOGITS = 2048, 1008
PER_ITEM = ("clip_score", "r_precision", "trace_canvas_accuracy")
HIGHER = {"fid": False, "kid": False, "is": True, "clip_score": True, "r_precision": True,
          "trace_canvas_accuracy": True}
IDENTITY = {"name": "inception-v3-compat", "weights_sha256": "0" * 64}


def _spectrum_features(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    lam = 1.0 / np.arange(1, POOL + 1)
    scaled = rng.standard_normal((n, POOL)) * np.sqrt(lam * 200.0 / lam.sum())
    return (scaled + 0.3 + shift).astype(np.float32)


def make_runs(n_items: int, n_images: int, systems: list[str], seed: int, shift: float = 0.0
              ) -> tuple[LoadedRun, LoadedRun]:
    """Runs A and B: per item a shared base plus independent noise in each run (so A and B have the
    same distribution, paired by item), plus ``shift`` on B's first system's features."""
    rng = np.random.default_rng(seed)
    image_of = np.sort(np.concatenate([np.arange(n_images), rng.integers(0, n_images, n_items - n_images)]))
    narratives = {}
    for i, image in enumerate(image_of):
        narrative = Narrative("bench", f"img{image:05d}", i, "a narrative")
        narratives[narrative.item_id] = narrative
    ids = np.array(list(narratives))
    reference = {"inception_pool": _spectrum_features(rng, n_items, 0.0), "item_ids": ids}
    reference["inception_logits"] = rng.normal(0, 2, (n_items, LOGITS)).astype(np.float32)
    base = {s: (_spectrum_features(rng, n_items, 0.05), rng.normal(0, 2, (n_items, LOGITS)),
                rng.uniform(20, 35, n_items), rng.integers(0, 2, n_items), rng.uniform(0, 1, n_items))
            for s in systems}
    runs = []
    for label in ("a", "b"):
        features, rows, metrics = {"reference": reference}, [], []
        for s, (pool, logits, clip, hit, trace) in base.items():
            noise = rng.standard_normal
            moved = shift if (label == "b" and s == systems[0]) else 0.0
            pool_s = (pool + 0.3 * noise(pool.shape) + moved).astype(np.float32)
            logits_s = (logits + 0.3 * noise(logits.shape)).astype(np.float32)
            features[s] = {"item_ids": ids, "inception_pool": pool_s, "inception_logits": logits_s}
            per_item = {"clip_score": clip + noise(n_items), "r_precision": hit.astype(float),
                        "trace_canvas_accuracy": np.clip(trace + 0.05 * noise(n_items), 0, 1)}
            rows.append(pd.DataFrame({"item_id": ids, "system": s, **per_item}))
            for name in HIGHER:
                value = float(np.mean(per_item[name])) if name in per_item else 1.0
                metrics.append(MetricResult(name, value, HIGHER[name], n_items, system=s, seed=0,
                                            params={"splits": 10} if name == "is" else {}))
        results = RunResults(run_id=label, created="2026-12-01T00:00:00+00:00", config_hash="f" * 64,
                             config={}, dataset={"name": "bench"},
                             systems=tuple(SystemInfo(s, s, "1", {}, {}, n_items) for s in systems),
                             metrics=tuple(metrics), extractors={"inception": IDENTITY}, versions={},
                             git_commit="", seed=0, timings={}, uncalibrated=False)
        runs.append(LoadedRun(Path(label), results, pd.concat(rows, ignore_index=True), narratives,
                              _features=features))
    return runs[0], runs[1]


def time_gate(n_items: int, n_images: int, n_systems: int) -> None:
    systems = [f"sys{i}" for i in range(n_systems)]
    a, b = make_runs(n_items, n_images, systems, seed=0)
    start, cpu = time.perf_counter(), time.process_time()
    comparison = compare_runs(a, b, n_resamples=1000)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"compare: {n_items} items ({n_images} images), {n_systems} systems, {len(comparison.rows)} rows "
          f"(FID/KID/IS + {len(PER_ITEM)} per-item, 1000 cluster resamples): {seconds:.1f} s wall, "
          f"{cpu:.1f} s CPU; "
          f"verdicts {sorted({r.verdict for r in comparison.rows})}", flush=True)


def agreement(resamples: int) -> None:
    """Analytic tests vs the paired item bootstrap on the same demo-sized data (module doc)."""
    for label, shift in (("null pair", 0.0), ("shifted pair", 0.02)):
        a, b = make_runs(300, 300, ["sys0"], seed=1, shift=shift)
        fa, fb = a.features("sys0"), b.features("sys0")
        ref = ReferenceSet(a.features("reference")["inception_pool"])
        for metric, influence, statistic in (("fid", intervals.fid_influence, fid_statistic),
                                             ("kid", intervals.kid_influence, kid_statistic)):
            test = intervals.paired_delta_test(influence(fa["inception_pool"], ref),
                                               influence(fb["inception_pool"], ref), 0.05)
            stat_a, stat_b = statistic(fa["inception_pool"], ref), statistic(fb["inception_pool"], ref)
            start = time.perf_counter()
            boot = paired_bootstrap(300, stat_b, stat_a, resamples, seed=0)
            seconds = time.perf_counter() - start
            _print_agreement(label, metric, test, boot, seconds)
        splits = [logits_to_inception_score(f["inception_logits"], seed=0).split_scores for f in (fa, fb)]
        test = intervals.paired_split_test(splits[0], splits[1], 0.05)
        is_stat = [lambda idx, f=f: logits_to_inception_score(f["inception_logits"][idx], seed=0).mean
                   for f in (fa, fb)]
        start = time.perf_counter()
        boot = paired_bootstrap(300, is_stat[1], is_stat[0], resamples, seed=0)
        _print_agreement(label, "is", test, boot, time.perf_counter() - start)


def _print_agreement(label: str, metric: str, test: intervals.PairedTest, boot, seconds: float) -> None:
    z = intervals.z_quantile(0.05)
    se_test = (test.ci_high - test.ci_low) / (2 * z)
    se_boot = (boot.ci_high - boot.ci_low) / (2 * z)
    print(f"  {label:13s} {metric:3s}: delta {test.difference:+.4g}; se analytic {se_test:.4g} vs "
          f"bootstrap {se_boot:.4g} (ratio {se_test / se_boot:.2f}); p analytic {test.p_value:.3g} "
          f"vs bootstrap {boot.p_value:.3g}; bootstrap took {seconds:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ln-coco", action="store_true", help="also the 8,573-item, 4-system gate")
    parser.add_argument("--agreement-resamples", type=int, default=200)
    args = parser.parse_args()
    time_gate(300, 300, 5)
    print(f"agreement with the paired item bootstrap ({args.agreement_resamples} resamples), n = 300:")
    agreement(args.agreement_resamples)
    if args.ln_coco:
        time_gate(8573, 4999, 4)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"({len(os.sched_getaffinity(0))} cores; 1-min load average {load})", flush=True)


if __name__ == "__main__":
    main()

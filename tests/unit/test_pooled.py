"""Pooled ratios (pixel accuracy, mIoU): the value is the ratio of summed counts, the influence
values are the finite-difference derivatives of that ratio, and the gate tests that number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.compare import compare_runs
from tests.report_fixtures import DEFAULT_VALUES, make_run_dir
from trecs_eval.metrics import pooled
from trecs_eval.metrics.label_canvas import class_counts

# central differences of a smooth ratio at step 1e-5: truncation ~1e-10, round-off ~1e-11
FINITE_DIFFERENCE_ABS_TOL = 1e-6
STEP = 1e-5
N_IMAGES = 12
PER_IMAGE = 3  # narratives per image in the gate's runs: the test's clusters
Z95 = float(stats.norm.ppf(0.975))


def _counts(seed: int, n: int = N_IMAGES) -> np.ndarray:
    """Per-item class counts of random gold/predicted maps of unequal sizes (the pooled ratio
    then differs from the mean of per-item ratios)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = (8 + 4 * (i % 3), 10 + 6 * (i % 4))
        gold = rng.choice([0, 5, 18, 124, 157], size=shape)
        pred = np.where(rng.random(shape) < 0.6, gold, rng.choice([5, 18, 124, 157], size=shape))
        out.append(class_counts(gold, pred))
    return np.stack(out)


def _weighted(counts: np.ndarray, j: int, eps: float, statistic: str) -> float:
    weights = np.ones(len(counts))
    weights[j] += eps
    return pooled.pooled_value(counts * weights[:, None, None], statistic)


@pytest.mark.parametrize("statistic", pooled.POOLED_STATISTICS)
def test_influence_values_are_the_finite_difference_derivatives_of_the_pooled_ratio(statistic):
    counts = _counts(1)
    found = pooled.pooled_influence(counts, statistic)
    n = len(counts)
    for j in range(n):  # d f / d w_j = IF_j / n for f(sum_i w_i s_i / sum_i w_i)
        up, down = _weighted(counts, j, STEP, statistic), _weighted(counts, j, -STEP, statistic)
        derivative = (up - down) / (2 * STEP)
        assert found.generated[j] == pytest.approx(n * derivative, abs=FINITE_DIFFERENCE_ABS_TOL)


def test_pooled_value_is_the_ratio_of_sums_not_the_mean_of_ratios():
    counts = _counts(2)
    tp, g = counts[:, 0].sum(axis=1), counts[:, 1].sum(axis=1)
    assert pooled.pooled_value(counts, "pixel_accuracy") == pytest.approx(tp.sum() / g.sum(), rel=1e-12)
    assert abs(pooled.pooled_value(counts, "pixel_accuracy") - np.mean(tp / g)) > 1e-4


def _pooled_run(path, counts: np.ndarray) -> None:
    values = {**DEFAULT_VALUES, "canvas_miou": (0.5,), "canvas_pixel_accuracy": (0.6,)}
    make_run_dir(path, systems=("trecs",), n_items=N_IMAGES, values=values, narratives_per_image=PER_IMAGE)
    features = dict(np.load(path / "features" / "trecs.npz"))
    features["canvas_counts"] = counts
    np.savez(path / "features" / "trecs.npz", **features)


def test_the_gate_tests_the_pooled_ratio_the_run_reports_and_drops_items_without_a_gold_map(tmp_path):
    counts_a, counts_b = _counts(3), _counts(4)
    counts_a[5] = 0  # no gold map for item 5 in run A: no value
    _pooled_run(tmp_path / "a", counts_a)
    _pooled_run(tmp_path / "b", counts_b)
    gate = compare_runs(tmp_path / "a", tmp_path / "b", metrics=["canvas_miou", "canvas_pixel_accuracy"],
                        allow_untestable=True)
    keep = np.arange(N_IMAGES) != 5
    for metric, statistic in (("canvas_miou", "miou"), ("canvas_pixel_accuracy", "pixel_accuracy")):
        row = next(r for r in gate.rows if r.metric == metric)
        assert row.estimator == "pooled_ratio" and row.n == N_IMAGES - 1 and row.n_dropped == 1
        assert row.value_a == pytest.approx(pooled.pooled_value(counts_a, statistic), rel=1e-12)
        assert row.value_b == pytest.approx(pooled.pooled_value(counts_b[keep], statistic), rel=1e-12)
        assert row.method and row.ci_low < row.delta < row.ci_high
        diff = (pooled.pooled_influence(counts_b[keep], statistic).generated
                - pooled.pooled_influence(counts_a[keep], statistic).generated)
        images = [i // PER_IMAGE for i in np.flatnonzero(keep)]
        totals = pd.Series(diff - diff.mean()).groupby(images).sum().to_numpy()
        variance = totals.size / (totals.size - 1) * np.sum(totals**2) / diff.size**2
        assert row.n_clusters == N_IMAGES // PER_IMAGE
        assert row.ci_high - row.delta == pytest.approx(Z95 * np.sqrt(variance), rel=1e-9)

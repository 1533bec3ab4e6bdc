"""A small version of benchmarks/bench_gate.py: the shipped gate (reports/compare.py) on simulated
run pairs, with images of two narratives, a per-item metric with missing values and a pooled ratio.

60 replications (d=8, 60 images × 2 narratives). Under H0, the chance that ANY of the six rows is
called significant must stay near alpha = 0.05 with Holm (MC sd at 60 replications ~0.028, so
0.12 is ~2.5 sd above 0.05), and far above it with no correction (six tests at 0.05 each);
under H1 the gate must see the per-item and pooled shifts more often than under H0.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_gate import METRICS, World, simulate

REPS = 60
FWER_MAX = 0.12
ALPHA_MAX = 0.15  # per metric, correction none: 0.05 + ~3.5 MC sd


@pytest.fixture(scope="module")
def table() -> dict[str, float]:
    # shifts of about 3 standard errors at this size: power well above alpha
    return simulate(World(d=8, n_images=60, per_image=2, score_shift=0.4, accuracy_shift=0.06), REPS)


def test_family_wise_false_alarm_rate_is_controlled_by_holm_and_bonferroni(table):
    assert table["H0 any (holm)"] <= FWER_MAX and table["H0 any (bonferroni)"] <= FWER_MAX
    assert table["H0 any (none)"] > table["H0 any (holm)"]  # the correction is what controls it
    assert table["H0 exit 1"] <= table["H0 any (holm)"]  # the gate fails on worsening only


@pytest.mark.parametrize("metric", METRICS)
def test_each_metric_alone_keeps_its_false_alarm_rate(table, metric):
    assert table[f"H0 {metric}"] <= ALPHA_MAX, table[f"H0 {metric}"]


@pytest.mark.parametrize("metric", ["clip_score", "trace_canvas_accuracy", "canvas_pixel_accuracy"])
def test_the_gate_has_power_on_per_item_and_pooled_shifts(table, metric):
    assert table[f"H1 {metric}"] > table[f"H0 {metric}"] + 0.3, (table[f"H1 {metric}"], table[f"H0 {metric}"])

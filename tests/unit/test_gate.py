"""The regression gate's decisions: missing values, untestable rows, two-sided p-values, the
family-wise correction, image clusters on both sides, and pooled ratios tested as reported.

Expected numbers are computed here with numpy/scipy from the run's own files (not read back
from the gate), so each test fails when the gate computes another statistic.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.compare import NO_CHANGE, NOT_COMPARED, WORSE, compare_runs, parse_thresholds
from reports.compare_output import render
from tests.report_fixtures import make_run_dir
from trecs_eval.cli import main
from trecs_eval.metrics import intervals
from trecs_eval.metrics.resample import ReferenceSet

N_ITEMS = 24
PER_IMAGE = 3  # narratives per image in the clustered runs
Z95 = float(stats.norm.ppf(0.975))
SAME_FLOATS_REL_TOL = 1e-9  # one formula evaluated twice on the same float64 arrays


def _row(comparison, system: str, metric: str):
    return next(r for r in comparison.rows if r.system == system and r.metric == metric)


def _edit_samples(run: Path, system: str, metric: str, change) -> None:
    samples = pd.read_parquet(run / "samples.parquet")
    rows = samples["system"] == system
    samples.loc[rows, metric] = change(samples.loc[rows, metric].to_numpy(dtype=np.float64))
    samples.to_parquet(run / "samples.parquet", index=False)


def _pair(tmp_path: Path, **kwargs) -> tuple[Path, Path]:
    common = {"systems": ("trecs", "retrieval"), "n_items": N_ITEMS, **kwargs}
    return make_run_dir(tmp_path / "a", **common), make_run_dir(tmp_path / "b", **common)


def _with_nan(values: np.ndarray, where: list[int]) -> np.ndarray:
    values = values.copy()
    values[where] = np.nan
    return values


def test_an_item_without_a_value_is_dropped_counted_and_the_regression_still_fails(tmp_path):
    a, b = _pair(tmp_path)
    for run in (a, b):
        _edit_samples(run, "trecs", "trace_canvas_accuracy", lambda v: _with_nan(v, [3]))
    _edit_samples(b, "trecs", "trace_canvas_accuracy", lambda v: v - 0.2)
    gate = compare_runs(a, b, parse_thresholds("trace_canvas_accuracy=-0.05"))
    row = _row(gate, "trecs", "trace_canvas_accuracy")
    assert row.n == N_ITEMS - 1 and row.n_dropped == 1 and "run A: 1, run B: 1" in row.dropped
    assert row.verdict == WORSE and row.regression and gate.exit_code == 1
    samples = pd.read_parquet(a / "samples.parquet")
    expected = np.nanmean(samples.loc[samples["system"] == "trecs", "trace_canvas_accuracy"])
    assert row.value_a == pytest.approx(expected, rel=SAME_FLOATS_REL_TOL)


def test_an_item_with_a_value_in_one_run_only_is_left_out_of_both(tmp_path):
    a, b = _pair(tmp_path)
    _edit_samples(b, "retrieval", "clip_score", lambda v: _with_nan(v, [0, 5]))
    row = _row(compare_runs(a, b, metrics=["clip_score"]), "retrieval", "clip_score")
    samples = pd.read_parquet(a / "samples.parquet")
    kept = samples.loc[samples["system"] == "retrieval", "clip_score"].to_numpy()
    kept = np.delete(kept, [0, 5])
    assert row.n == N_ITEMS - 2 and "run A: 0, run B: 2" in row.dropped
    assert row.value_a == pytest.approx(kept.mean(), rel=SAME_FLOATS_REL_TOL) and row.delta == 0.0


def test_a_gated_metric_that_cannot_be_tested_fails_the_gate_unless_allowed(tmp_path, capsys):
    a, b = _pair(tmp_path)
    for run in (a, b):
        _edit_samples(run, "trecs", "trace_canvas_accuracy", lambda v: np.full_like(v, np.nan))
    gate = compare_runs(a, b, parse_thresholds("trace_canvas_accuracy=-0.05"))
    row = _row(gate, "trecs", "trace_canvas_accuracy")
    assert row.untestable and row.verdict == NOT_COMPARED and "0 image(s)" in row.reason
    assert gate.exit_code == 1 and not gate.regressions
    assert "FAIL: 1 gated rows untestable" in render(gate, "md")
    allowed = compare_runs(a, b, parse_thresholds("trace_canvas_accuracy=-0.05"), allow_untestable=True)
    assert allowed.exit_code == 0 and allowed.untestable
    assert main(["-q", "compare", str(a), str(b)]) == 1
    assert "**FAIL: untestable**" in capsys.readouterr().out
    assert main(["-q", "compare", str(a), str(b), "--allow-untestable"]) == 0


def test_a_metric_unavailable_in_one_run_is_untestable_in_both_it_is_skipped(tmp_path):
    a, b = _pair(tmp_path)
    data = json.loads((b / "results.json").read_text())
    for m in data["metrics"]:
        if m["name"] == "is" and m["system"] == "trecs":
            m.update(status="unavailable", value=None)
    (b / "results.json").write_text(json.dumps(data))
    gate = compare_runs(a, b, metrics=["is"])
    assert _row(gate, "trecs", "is").untestable and gate.exit_code == 1
    both = compare_runs(b, b)  # unavailable in both runs and not named: nothing to protect
    row = _row(both, "trecs", "is")
    assert row.verdict == NOT_COMPARED and not row.untestable and both.exit_code == 0
    assert _row(compare_runs(b, b, metrics=["is"]), "trecs", "is").untestable  # named: protected


def _noisy_shift(tmp_path: Path, z: float) -> tuple[Path, Path, float]:
    """Runs whose retrieval clip_score differs by d + e_i (e exactly centred): the paired z is ``z``."""
    a, b = _pair(tmp_path)
    e = np.random.default_rng(7).normal(size=N_ITEMS)
    e = (e - e.mean()) / e.std()
    se = math.sqrt(N_ITEMS / (N_ITEMS - 1) * np.sum(e**2)) / N_ITEMS  # one narrative per image
    _edit_samples(b, "retrieval", "clip_score", lambda v: v - z * se + e)
    return a, b, 2.0 * stats.norm.sf(abs(z))


@pytest.mark.parametrize("z", [2.5, -2.5])
def test_the_gate_p_value_is_two_sided(tmp_path, z):
    a, b, expected = _noisy_shift(tmp_path, z)
    row = _row(compare_runs(a, b, metrics=["clip_score"], correction="none"), "retrieval", "clip_score")
    assert row.p_value == pytest.approx(expected, rel=1e-6)
    assert row.verdict == (WORSE if z > 0 else "better")  # B = A - z se: lower clip_score is worse


def test_holm_and_none_give_different_verdicts_on_a_non_degenerate_p_value(tmp_path):
    a, b, p = _noisy_shift(tmp_path, 2.5)
    none = compare_runs(a, b, correction="none")
    holm = compare_runs(a, b, correction="holm")
    tested = [r for r in holm.rows if r.method]
    m = len(tested)
    assert 0.05 / m < p < 0.05  # a p-value that the correction decides on
    row_none, row_holm = _row(none, "retrieval", "clip_score"), _row(holm, "retrieval", "clip_score")
    assert row_none.p_value == row_holm.p_value == pytest.approx(p, rel=1e-6)
    assert row_none.p_adjusted == row_none.p_value and row_none.verdict == WORSE and none.exit_code == 1
    assert row_holm.p_adjusted == pytest.approx(min(1.0, m * p), rel=1e-9)  # the smallest p: m p
    assert row_holm.verdict == NO_CHANGE and holm.exit_code == 0
    bonferroni = compare_runs(a, b, correction="bonferroni")
    for r in bonferroni.rows:
        if r.method:
            assert r.p_adjusted == pytest.approx(min(1.0, m * r.p_value), rel=1e-12)


def _clustered_variance(values: np.ndarray, labels: list[str]) -> float:
    """C/(C-1) sum_c (sum_{i in c} (v_i - mean))^2 / n^2, by pandas groupby."""
    centred = pd.Series(values - values.mean())
    totals = centred.groupby(labels).sum().to_numpy()
    c, n = totals.size, values.size
    return c / (c - 1) * float(np.sum(totals**2)) / n**2


def test_per_item_variance_is_clustered_by_image(tmp_path):
    a, b = _pair(tmp_path, narratives_per_image=PER_IMAGE)
    effect = np.repeat(np.random.default_rng(3).normal(0, 2, N_ITEMS // PER_IMAGE), PER_IMAGE)
    _edit_samples(b, "trecs", "clip_score", lambda v: v + effect)  # one shift per image
    row = _row(compare_runs(a, b, metrics=["clip_score"]), "trecs", "clip_score")
    images = [f"img{i // PER_IMAGE:04d}" for i in range(N_ITEMS)]
    half = Z95 * math.sqrt(_clustered_variance(effect, images))
    assert row.n_clusters == N_ITEMS // PER_IMAGE
    assert row.ci_high - row.delta == pytest.approx(half, rel=1e-9)


def test_fid_clusters_generated_and_reference_items_by_image(tmp_path):
    a = make_run_dir(tmp_path / "a", systems=("trecs",), n_items=N_ITEMS, narratives_per_image=PER_IMAGE,
                     reference_from_items=True)
    b = make_run_dir(tmp_path / "b", systems=("trecs",), n_items=N_ITEMS, narratives_per_image=PER_IMAGE,
                     reference_from_items=True, feature_shift={"trecs": 0.15})
    row = _row(compare_runs(a, b, metrics=["fid"]), "trecs", "fid")
    reference = np.load(a / "features" / "reference.npz")["inception_pool"]
    found = [intervals.fid_influence(np.load(run / "features" / "trecs.npz")["inception_pool"],
                                     ReferenceSet(reference)) for run in (a, b)]
    images = [f"img{i // PER_IMAGE:04d}" for i in range(N_ITEMS)]
    variance = (_clustered_variance(found[1].generated - found[0].generated, images)
                + _clustered_variance(found[1].reference - found[0].reference, images))
    assert row.n_clusters == N_ITEMS // PER_IMAGE
    assert row.ci_high - row.delta == pytest.approx(Z95 * math.sqrt(variance), rel=1e-6)


def test_the_split_test_p_value_is_scipys_two_sided_paired_t():
    rng = np.random.default_rng(11)
    a = rng.normal(5.0, 0.3, 10)
    for shift in (0.25, -0.25):
        b = a + shift + rng.normal(0, 0.3, 10)
        found = intervals.paired_split_test(a, b, 0.05)
        assert found.p_value == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-9)

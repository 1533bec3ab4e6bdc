"""The regression gate: resample statistics vs torch-fidelity, verdicts, thresholds, refusals, outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import kernel_mmd

from reports.compare import NO_CHANGE, WORSE, compare_runs, parse_thresholds
from reports.compare_output import render
from tests.report_fixtures import make_run_dir
from trecs_eval.errors import ConfigError, IdentityMismatchError, InputError, UnknownNameError
from trecs_eval.metrics.fid import features_to_fid
from trecs_eval.metrics.inception_score import DEFAULT_SPLITS, logits_to_inception_score
from trecs_eval.metrics.resample import fid_statistic, kid_statistic

# float64 throughout; torch-fidelity takes sqrt(eigvals) of the non-symmetric product S_g S_r, we an SVD.
FID_REL_TOL_VS_TORCH_FIDELITY = 1e-9  # full-rank covariances (n, m > d)
# Singular covariances (n or m <= d): eigvals leaves the zero eigenvalues at ~1e-15 (or slightly
# complex), and each adds sqrt(1e-15) ~ 3e-8 to torch-fidelity's trace; the SVD has exact zeros.
FID_REL_TOL_VS_TORCH_FIDELITY_SINGULAR = 1e-6
FID_REL_TOL_VS_PROJECT_FID = 1e-8  # trecs_eval.metrics.fid: symmetric eigh of float64 matrices, as ours
KID_ABS_TOL_VS_TORCH_FIDELITY = 1e-10
N_RESAMPLES = 200  # enough for a stable 95 % interval on these clear-cut cases, fast on 2 cores
KID_KWARGS = {"kid_kernel": "poly", "kid_kernel_poly_degree": 3, "kid_kernel_poly_gamma": None,
              "kid_kernel_poly_coef0": 1}


def _tf_fid(x: np.ndarray, y: np.ndarray) -> float:
    stats = [fid_features_to_statistics(torch.from_numpy(f)) for f in (x, y)]
    return fid_statistics_to_metric(stats[0], stats[1], verbose=False)["frechet_inception_distance"]


@pytest.mark.parametrize(("n", "m", "d", "tol"), [
    (60, 90, 16, FID_REL_TOL_VS_TORCH_FIDELITY),  # reference factor: symmetric sqrt of S_r (m > d)
    (30, 20, 48, FID_REL_TOL_VS_TORCH_FIDELITY_SINGULAR),  # reference factor: centred features (m <= d)
    (12, 40, 40, FID_REL_TOL_VS_TORCH_FIDELITY_SINGULAR),
])
def test_fid_statistic_matches_torch_fidelity_on_full_sets_and_resamples(n, m, d, tol):
    rng = np.random.default_rng(n * 1000 + m)
    feats, ref = rng.normal(0.3, 1.0, (n, d)), rng.normal(0.0, 1.2, (m, d))
    statistic = fid_statistic(feats, ref)
    assert statistic(np.arange(n)) == pytest.approx(_tf_fid(feats, ref), rel=tol)
    resample = rng.integers(0, n, n)  # duplicates included, as in a bootstrap
    assert statistic(resample) == pytest.approx(_tf_fid(feats[resample], ref), rel=tol)


def test_fid_statistic_matches_the_project_fid_on_inception_sized_features():
    rng = np.random.default_rng(5)
    feats, ref = rng.normal(0.2, 1.0, (40, 2048)), rng.normal(0.0, 1.0, (60, 2048))
    resample = rng.integers(0, 40, 40)
    ours = fid_statistic(feats, ref)(resample)
    assert ours == pytest.approx(features_to_fid(feats[resample], ref)[0], rel=FID_REL_TOL_VS_PROJECT_FID)


def test_kid_statistic_matches_torch_fidelity_unbiased_mmd():
    rng = np.random.default_rng(1)
    n, d = 25, 12
    feats, ref = rng.normal(0.2, 1.0, (n, d)), rng.normal(0.0, 1.0, (n, d))
    statistic = kid_statistic(feats, ref)
    assert statistic(np.arange(n)) == pytest.approx(kernel_mmd(feats, ref, **KID_KWARGS),
                                                   abs=KID_ABS_TOL_VS_TORCH_FIDELITY)
    resample = rng.integers(0, n, n)
    assert statistic(resample) == pytest.approx(kernel_mmd(feats[resample], ref, **KID_KWARGS),
                                                abs=KID_ABS_TOL_VS_TORCH_FIDELITY)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    common = {"systems": ("trecs", "retrieval"), "n_items": 24}
    return {
        "a": make_run_dir(root / "a", **common),
        "a_copy": make_run_dir(root / "a_copy", **common),
        "shifted": make_run_dir(root / "shifted", feature_shift={"trecs": 0.6}, **common),
        "scores": make_run_dir(root / "scores", score_shift={"retrieval": -2.0}, **common),
        "reseeded": make_run_dir(root / "reseeded", seed=1, **common),
        "other_extractor": make_run_dir(root / "other", inception_identity={"name": "other-net"}, **common),
        "other_items": make_run_dir(root / "other_items", item_offset=10, **common),
    }


def _row(comparison, system: str, metric: str):
    return next(r for r in comparison.rows if r.system == system and r.metric == metric)


def test_a_run_against_itself_has_no_significant_change(runs):
    comparison = compare_runs(runs["a"], runs["a_copy"], n_resamples=N_RESAMPLES)
    assert comparison.exit_code == 0 and comparison.rows
    for row in comparison.rows:
        assert row.verdict == NO_CHANGE and row.delta == 0.0 and row.p_value == 1.0, row
    assert {r.source for r in comparison.rows} == {"features", "samples"}
    assert len(comparison.rows) == 2 * 6  # every metric of every system was compared


def test_gate_is_on_all_items_is_the_project_is_with_the_runs_splits_and_seed(runs):
    comparison = compare_runs(runs["a"], runs["a_copy"], n_resamples=10, metrics=["is"])
    features = np.load(runs["a"] / "features" / "trecs.npz")
    expected = logits_to_inception_score(features["inception_logits"], seed=0, splits=DEFAULT_SPLITS).mean
    assert _row(comparison, "trecs", "is").value_a == expected


def test_shifted_features_flag_fid_and_kid_worse_for_that_system_only(runs):
    comparison = compare_runs(runs["a"], runs["shifted"], n_resamples=N_RESAMPLES)
    assert comparison.exit_code == 1
    for metric in ("fid", "kid"):
        row = _row(comparison, "trecs", metric)
        assert row.verdict == WORSE and row.regression and row.ci_low > 0 and row.p_value < 0.05
        assert row.delta == pytest.approx(row.value_b - row.value_a)
        assert _row(comparison, "retrieval", metric).verdict == NO_CHANGE
    fid = _row(comparison, "trecs", "fid")
    # A mean shift s in every one of d dimensions adds about d*s^2 to FID (d=64, s=0.6: 23).
    assert 10.0 < fid.delta < 40.0
    backwards = compare_runs(runs["shifted"], runs["a"], n_resamples=N_RESAMPLES, metrics=["fid"])
    assert _row(backwards, "trecs", "fid").verdict == "better" and backwards.exit_code == 0


def test_thresholds_allow_a_significant_worsening_up_to_their_size(runs):
    only = ["clip_score"]
    strict = compare_runs(runs["a"], runs["scores"], n_resamples=N_RESAMPLES, metrics=only)
    row = _row(strict, "retrieval", "clip_score")
    assert row.verdict == WORSE and row.delta == pytest.approx(-2.0) and strict.exit_code == 1
    lenient = compare_runs(runs["a"], runs["scores"], parse_thresholds("clip_score=-2.5"),
                           n_resamples=N_RESAMPLES, metrics=only)
    row = _row(lenient, "retrieval", "clip_score")
    assert row.verdict == WORSE and not row.regression and lenient.exit_code == 0
    unsigned = compare_runs(runs["a"], runs["scores"], parse_thresholds("clip_score=1.5"),
                            n_resamples=N_RESAMPLES, metrics=only)
    assert unsigned.exit_code == 1  # -2.0 is beyond the allowed 1.5


def test_threshold_parsing_and_validation(runs):
    parsed = parse_thresholds("fid=+1.0, clip_score=-0.5,kid=0.01")
    assert [(t.metric, t.magnitude, t.sign) for t in parsed.values()] == [
        ("fid", 1.0, 1), ("clip_score", 0.5, -1), ("kid", 0.01, 0)]
    for bad in ("fid", "fid=", "=1", "fid=abc", "fid=nan"):
        with pytest.raises(ConfigError, match="expected METRIC=NUMBER"):
            parse_thresholds(bad)
    with pytest.raises(ConfigError, match=r"points the wrong way.*write fid=\+1"):
        compare_runs(runs["a"], runs["a_copy"], parse_thresholds("fid=-1"), n_resamples=10)
    with pytest.raises(UnknownNameError, match="did you mean 'fid'"):
        compare_runs(runs["a"], runs["a_copy"], parse_thresholds("fdi=1"), n_resamples=10)
    with pytest.raises(UnknownNameError, match="did you mean 'kid'"):
        compare_runs(runs["a"], runs["a_copy"], n_resamples=10, metrics=["kdi"])


def test_mismatched_extractor_identity_is_refused_unless_allowed(runs):
    with pytest.raises(IdentityMismatchError, match=r"extractor 'inception' differs.*name"):
        compare_runs(runs["a"], runs["other_extractor"], n_resamples=10)
    allowed = compare_runs(runs["a"], runs["other_extractor"], n_resamples=10, allow_mismatch=True)
    assert any("extractor 'inception' differs" in w for w in allowed.warnings)


def test_different_item_sets_are_refused_unless_allowed(runs):
    with pytest.raises(InputError, match="different items"):
        compare_runs(runs["a"], runs["other_items"], n_resamples=10)
    allowed = compare_runs(runs["a"], runs["other_items"], n_resamples=10, allow_mismatch=True)
    assert {r.n for r in allowed.rows} == {14}  # items 10..23 are shared
    assert any("14 shared items" in w for w in allowed.warnings)


def test_the_paired_tests_are_analytic_and_do_not_depend_on_the_seed(runs):
    def row(seed: int, metric: str):
        comparison = compare_runs(runs["a"], runs["reseeded"], n_resamples=100, seed=seed, metrics=[metric],
                                  allow_mismatch=True)  # another seed draws another reference set
        return _row(comparison, "retrieval", metric)

    # Per-item metrics (cluster-robust z) and FID (delta method) resample nothing: same interval.
    for metric in ("clip_score", "fid"):
        first, other = row(3, metric), row(4, metric)
        assert (first.ci_low, first.ci_high, first.p_value) == (other.ci_low, other.ci_high, other.p_value)


def test_a_clear_per_item_regression_fails_the_gate_after_holm_over_every_row(runs):
    """The paired bootstrap's p-value could not go below 2/(resamples + 1): after Holm over the
    ~50 rows of a demo-sized gate, a per-item metric could never fail it. The z-test's can."""
    comparison = compare_runs(runs["a"], runs["scores"], n_resamples=N_RESAMPLES)  # every metric
    row = _row(comparison, "retrieval", "clip_score")
    assert row.p_value < 1e-6 and row.p_adjusted < 1e-6 * len(comparison.rows)
    assert row.verdict == WORSE and row.regression and comparison.exit_code == 1
    assert row.ci_low <= row.delta <= row.ci_high < 0.0  # a constant shift: se 0, a point interval


def test_outputs_junit_json_markdown(runs):
    comparison = compare_runs(runs["a"], runs["shifted"], n_resamples=100)
    suite = ET.fromstring(render(comparison, "junit"))
    cases = suite.findall("testcase")
    assert len(cases) == len(comparison.rows) and suite.get("failures") == str(len(comparison.regressions))
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {(f"trecs_eval.{r.system}", r.metric) for r in comparison.regressions}
    data = json.loads(render(comparison, "json"))
    assert data["exit_code"] == 1 and len(data["rows"]) == len(comparison.rows)
    markdown = render(comparison, "md")
    assert markdown.startswith("**Regression gate: FAIL") and markdown.count("**FAIL**") == 2


def test_missing_features_are_reported_not_compared(tmp_path):
    a = make_run_dir(tmp_path / "a", systems=("trecs",), n_items=8)
    b = make_run_dir(tmp_path / "b", systems=("trecs",), n_items=8)
    (b / "features" / "trecs.npz").unlink()
    comparison = compare_runs(a, b, n_resamples=10)
    row = _row(comparison, "trecs", "fid")
    assert row.verdict == "not compared" and "missing in run B" in row.reason and row.untestable
    assert comparison.exit_code == 1  # a gated metric that cannot be tested fails the gate
    junit = ET.fromstring(render(comparison, "junit"))
    assert junit.find("testcase[@name='fid']/failure[@type='untestable']") is not None
    allowed = compare_runs(a, b, n_resamples=10, allow_untestable=True)
    assert allowed.exit_code == 0
    assert ET.fromstring(render(allowed, "junit")).find("testcase[@name='fid']/skipped") is not None

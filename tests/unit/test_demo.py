"""The demo's ranking checks pass and fail on hand-made results."""

from __future__ import annotations

from trecs_eval.commands.demo import ranking_checks
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import RunResults, SystemInfo


def results(fid: dict[str, tuple[float, float, float]], trace: dict[str, tuple[float, float, float]]
            ) -> RunResults:
    metrics = [MetricResult("fid", v, False, 300, lo, hi, system=s) for s, (v, lo, hi) in fid.items()]
    metrics += [MetricResult("trace_canvas_accuracy", v, True, 300, lo, hi, system=s)
                for s, (v, lo, hi) in trace.items()]
    return RunResults(run_id="r", created="", config_hash="", config={}, dataset={},
                      systems=tuple(SystemInfo(s, s) for s in fid), metrics=tuple(metrics))


GOOD_TRACE = {"trecs-oracle": (0.84, 0.83, 0.85), "trecs-no-trace": (0.31, 0.29, 0.32)}


def test_sane_ranking_passes_including_a_tie_within_cis():
    tie = {"real": (88.0, 56.0, 170.0), "retrieval": (80.0, 59.0, 150.0), "noise": (9e5, 8e5, 1e6)}
    assert all(ok for ok, _ in ranking_checks(results(tie, GOOD_TRACE)))


def test_insane_rankings_fail():
    real_worse = {"real": (200.0, 190.0, 210.0), "trecs-oracle": (80.0, 70.0, 90.0), "noise": (9e5, 8e5, 1e6)}
    assert [ok for ok, _ in ranking_checks(results(real_worse, GOOD_TRACE))] == [False, True, True]
    noise_not_worst = {"real": (10.0, 9.0, 11.0), "noise": (50.0, 40.0, 60.0), "trecs": (90.0, 80.0, 99.0)}
    assert [ok for ok, _ in ranking_checks(results(noise_not_worst, GOOD_TRACE))] == [True, False, True]
    overlapping = {"trecs-oracle": (0.50, 0.40, 0.60), "trecs-no-trace": (0.45, 0.35, 0.55)}
    fid = {"real": (10.0, 9.0, 11.0), "noise": (9e5, 8e5, 1e6)}
    assert [ok for ok, _ in ranking_checks(results(fid, overlapping))] == [True, True, False]

"""Power by simulation and the win-rate interval's coverage (the benchmark's quick mode)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from trecs_eval.cli import main
from trecs_eval.human.power import power_table, render_power

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_human_coverage.py"
COVERAGE_FLOOR_QUICK = 0.87  # 200 replications: nominal 0.95 minus ~4 Monte Carlo sd
SIZE_CEILING = 0.12  # 200 simulations: nominal 0.05 plus ~4.5 Monte Carlo sd


def test_power_grows_with_the_design_and_size_stays_nominal(small_study):
    rows = power_table(small_study, 0.15, n_sims=200, seed=1)
    assert [r.judgments_per_pair for r in rows] == [r.items * 3 for r in rows]
    assert rows[1].items == len(small_study.items) and rows[1].raters == len(small_study.raters)
    assert rows[-1].power >= 0.8 and rows[-1].power > rows[0].power + 0.3
    assert all(r.size <= SIZE_CEILING for r in rows)
    text = render_power(rows, 0.15, 3)
    assert "smallest design with power >= 80%" in text and f"| {rows[-1].items} |" in text


def test_clustering_costs_power(small_study):
    plain = power_table(small_study, 0.1, item_sd=0.0, rater_sd=0.0, n_sims=200, seed=2, scales=(4.0,))
    clustered = power_table(small_study, 0.1, item_sd=0.25, rater_sd=0.15, n_sims=200, seed=2, scales=(4.0,))
    assert clustered[0].power < plain[0].power


def test_power_cli_prints_a_table(small_study, capsys):
    assert main(["human", "power", str(small_study.root), "--effect", "0.2", "--sims", "50"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n|") >= 4 and "power" in out
    assert main(["human", "power", str(small_study.root), "--effect", "0.7"]) == 2


def test_two_way_interval_covers_where_one_way_and_naive_do_not():
    spec = importlib.util.spec_from_file_location("bench_human_coverage", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    ((_, cov),) = bench.main(["--quick", "--reps", "200"])
    assert cov["two-way"] >= COVERAGE_FLOOR_QUICK
    # strong rater effects: ignoring them (naive, item-only) under-covers
    assert cov["naive"] < cov["two-way"] - 0.1 and cov["item"] < cov["two-way"] - 0.1


@pytest.mark.parametrize("effect", [0.0, 0.5])
def test_effect_outside_range_is_refused(small_study, effect):
    from trecs_eval.errors import ConfigError

    with pytest.raises(ConfigError):
        power_table(small_study, effect)

"""A small version of benchmarks/bench_coverage.py: known Gaussian worlds, measured coverage and error rates.

80 replications at d=8, n=120 (a few seconds). A true coverage of 0.95 falls in [0.87, 0.995]
with probability ~0.99 at 80 replications (binomial sd 0.024), so a method that covers 0.80 or
always covers (an interval far too wide) fails here; the full table is in docs/statistics.md.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_coverage import Setting, simulate

REPS = 80
COVERAGE_BOUNDS = (0.87, 0.995)


@pytest.fixture(scope="module")
def table() -> dict[str, float]:
    return simulate(Setting(d=8, n=120, n_resamples=300), REPS)


@pytest.mark.parametrize("key", ["cover fid", "cover kid", "cover is", "cover fid_inf",
                                 "cover per_item (images)", "cover cmmd", "cover pooled (images)"])
def test_each_interval_covers_near_its_nominal_95_percent(table: dict[str, float], key: str) -> None:
    assert COVERAGE_BOUNDS[0] <= table[key] <= COVERAGE_BOUNDS[1], (key, table[key])


def test_ignoring_clusters_under_covers(table: dict[str, float]) -> None:
    # Narratives of one image share the image's effect: the naive item bootstrap is too narrow.
    assert table["cover per_item (naive)"] < table["cover per_item (images)"] - 0.05
    assert table["cover pooled (naive)"] < table["cover pooled (images)"] - 0.05
    # the run's FID interval widens when it resamples images instead of narratives
    assert table["se ratio fid (images / naive)"] > 1.02


def test_fid_at_n_is_biased_and_fid_inf_removes_most_of_it(table: dict[str, float]) -> None:
    fd = table["FD (closed form)"]
    assert table["E FID_n (MC)"] - fd > 10 * table["MC sd of E FID_n"]  # FID at n sits above FD
    assert abs(table["fid_inf bias"]) < 0.5 * (table["E FID_n (MC)"] - fd)

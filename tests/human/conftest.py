"""A demo-shaped run (five systems, real and noise included) and a small study planned from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report_fixtures import make_run_dir
from trecs_eval.human.plan import PlanSpec, plan_study
from trecs_eval.human.study import Study

RUN_SYSTEMS = ("trecs", "sd", "gligen", "real", "noise")
HOSTILE_SYSTEM = "<img src=x onerror=alert(1)>"  # a system name that is also markup
SMALL_SPEC = PlanSpec(systems=("trecs", "sd", "gligen"), questions=("realism", "alignment", "trace"),
                      n_items=10, judgments_per_pair=3, tasks_per_rater=20, attention_rate=0.1,
                      repeat_rate=0.1, seed=7)


@pytest.fixture(scope="session")
def human_run(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("human") / "run", systems=RUN_SYSTEMS, n_items=12)


@pytest.fixture
def small_study(human_run: Path, tmp_path: Path) -> Study:
    return plan_study(human_run, tmp_path / "study", SMALL_SPEC)

"""The metric and extractor registries: declarations, parameter checks before any work, and
``trecs-eval metrics --list``."""

from __future__ import annotations

import re

import pytest

from trecs_eval.cli import main
from trecs_eval.config import MetricSpec
from trecs_eval.errors import ConfigError, UnknownNameError
from trecs_eval.features.registry import EXTRACTORS
from trecs_eval.measure import plan_metrics
from trecs_eval.metrics.registry import METRICS, checked_params, metric, parse_metric_names
from trecs_eval.metrics.types import NEEDS, SCOPES, Metric, MetricInfo


def test_every_builtin_metric_declares_what_reports_and_runs_need():
    for name in METRICS.names():
        m = metric(name)
        assert m.name == name and m.info.display_name, name
        assert m.info.scope in SCOPES and set(m.needs) <= set(NEEDS), name
        assert m.info.interval, f"{name} does not say how its interval is computed"
        for space in m.spaces(m.params):
            assert space in EXTRACTORS, (name, space)


def test_params_are_checked_with_a_suggestion_and_defaults_filled():
    assert checked_params("kid", {"n_subsets": 10})["n_subsets"] == 10
    assert checked_params("kid", {})["n_resamples"] == metric("kid").params["n_resamples"]
    expected = re.escape("unknown parameter 'n_subset' (did you mean 'n_subsets'?)")
    with pytest.raises(ConfigError, match=expected):
        checked_params("kid", {"n_subset": 10})
    with pytest.raises(ConfigError, match="n_resamples = '100' must be int"):
        checked_params("fid", {"n_resamples": "100"})
    with pytest.raises(ConfigError, match="must be bool"):
        checked_params("r_precision", {"allow_fewer_negatives": 1})
    assert checked_params("fid", {"alpha": 0.1})["alpha"] == 0.1


def test_unknown_names_fail_with_a_suggestion():
    with pytest.raises(UnknownNameError, match="did you mean 'clip_score'"):
        parse_metric_names("clip_scor")
    with pytest.raises(UnknownNameError, match="did you mean 'r_precision'"):
        plan_metrics([MetricSpec("r_precison")])


def test_a_space_picked_by_a_param_must_be_a_registered_extractor(monkeypatch):
    def compute(inputs, params):
        raise AssertionError("never computed")

    picky = Metric(MetricInfo("picky", True, display_name="Picky", interval="none"), compute,
                   params={"features": "inception"}, space_param="features")
    monkeypatch.setattr(METRICS, "_items", {**METRICS._items, "picky": picky})
    assert plan_metrics([MetricSpec("picky")])[0].spaces == ("inception",)
    assert plan_metrics([MetricSpec("picky", {"features": "clip"})])[0].info.features == ("clip",)
    with pytest.raises(UnknownNameError, match=r"space 'inceptoin' \(did you mean 'inception'"):
        plan_metrics([MetricSpec("picky", {"features": "inceptoin"})])


def test_a_metric_declaration_is_checked_when_made():
    info = MetricInfo("x", True)
    with pytest.raises(ValueError, match="unknown needs"):
        Metric(info, lambda i, p: None, needs=frozenset({"canvass"}))
    with pytest.raises(ValueError, match="scope"):
        Metric(MetricInfo("x", True, scope="pixel"), lambda i, p: None)
    assert MetricInfo.from_dict(MetricInfo("x", False, features=("a",)).to_dict()) == MetricInfo(
        "x", False, features=("a",))


def test_metrics_command_lists_and_refuses_bad_params_before_any_work(tmp_path, capsys):
    assert main(["metrics", "--list"]) == 0
    out = capsys.readouterr().out
    for name in METRICS.names():
        assert re.search(rf"^{name} ", out, re.M), name
    code = main(["metrics", "--generated", str(tmp_path / "absent"), "--metrics", "kid",
                 "--param", "kid.n_subset=3", "--device", "cpu", "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "did you mean 'n_subsets'" in err and "Traceback" not in err
    code = main(["metrics", "--generated", str(tmp_path / "absent"), "--metrics", "fid",
                 "--param", "kid.n_subsets=3", "--device", "cpu", "-q"])
    assert code == 2 and "'kid' is not in --metrics" in capsys.readouterr().err

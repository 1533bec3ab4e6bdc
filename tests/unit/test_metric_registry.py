"""The metric and extractor registries: declarations, parameter checks before any work, and
``trecs-eval metrics --list``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np
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


class CountingSpace:
    """A fake feature space that counts its forward passes (one row per image: its file size)."""

    calls: ClassVar[list[int]] = []

    def __init__(self, settings, cache):
        from trecs_eval.features.identity import ExtractorIdentity

        self.identity = ExtractorIdentity("counting", "none", ("size",), "none", versions={})

    def extract(self, paths):
        CountingSpace.calls.append(len(paths))
        return np.array([[float(Path(p).stat().st_size)] for p in paths])

    def arrays(self, features):
        return {"counting": features}


def test_each_space_is_extracted_once_per_image_set_for_all_its_metrics(monkeypatch, tmp_path):
    from trecs_eval.features.cache import FeatureCache
    from trecs_eval.features.registry import ExtractorSettings, FeatureExtractors
    from trecs_eval.measure import ImageSet, ReferenceFeatures, TextEmbeddings, evaluate_set
    from trecs_eval.metrics.types import MetricResult

    def mean_of(name):
        def compute(inputs, params):
            values = inputs.features["counting"][:, 0]
            reference = inputs.reference.get("counting")
            shift = float(reference.mean()) if reference is not None else 0.0
            return MetricResult(name, float(values.mean()) - shift, True, len(values))
        return compute

    metrics = {name: Metric(MetricInfo(name, True, features=("counting",), interval="none"), mean_of(name),
                            needs=frozenset({"reference"}) if name == "b" else frozenset())
               for name in ("a", "b")}
    monkeypatch.setattr(METRICS, "_items", {**METRICS._items, **metrics})
    monkeypatch.setattr(EXTRACTORS, "_items", {**EXTRACTORS._items, "counting": CountingSpace})
    monkeypatch.setattr(CountingSpace, "calls", [])
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.bin")
        paths[-1].write_bytes(b"x" * (i + 1))
    extractors = FeatureExtractors(ExtractorSettings(), FeatureCache(tmp_path / "c.sqlite"))
    plan = plan_metrics([MetricSpec("a"), MetricSpec("b")])
    reference = ReferenceFeatures(extractors, paths[:2], ["r0", "r1"])
    for system in ("s1", "s2"):
        images = ImageSet(system, tuple(p.stem for p in paths), tuple(paths))
        found = evaluate_set(plan, extractors, images, reference, TextEmbeddings(extractors, []), seed=0)
        assert [r.value for r in found.results] == [2.5, 1.0] and found.arrays["counting"].shape == (4, 1)
    # each system's images once and the reference once (when "b" first needs it), for both metrics
    assert CountingSpace.calls == [4, 2, 4]


def test_metrics_command_refuses_metrics_that_need_a_run(tmp_path, capsys):
    for name, message in (("canvas_miou", "label canvases"), ("trace_hit_rate", "gold tags")):
        code = main(["metrics", "--generated", str(tmp_path), "--metrics", name, "--device", "cpu", "-q"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, err


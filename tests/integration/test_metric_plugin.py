"""A third-party metric and feature extractor, installed as a package, appear in a run's table.

The plug-in package is written into tmp_path (a module plus a ``*.dist-info`` whose
``entry_points.txt`` names it in the ``trecs_eval.metrics`` and ``trecs_eval.extractors``
groups) and put on ``sys.path``, as ``pip install --target`` would. Nothing in this repository
names it: the run config asks for ``redness`` and the registry finds it.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.harness_fixtures import build_toy_splits
from trecs_eval.cli import main
from trecs_eval.features.registry import EXTRACTORS
from trecs_eval.metrics.registry import METRICS
from trecs_eval.results import read_results

N_EVAL = 6
MEAN_ABS_TOL = 1e-9  # a mean of float64 pixel means, summed in another order
PLUGIN_MODULE = '''
import numpy as np
from PIL import Image

from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.metrics.types import Metric, MetricInfo, MetricResult


class MeanColour:
    """Feature space: each image's mean RGB."""

    def __init__(self, settings, cache):
        self.identity = ExtractorIdentity("mean-colour", "none", ("rgb_mean",), "none", versions={})
        self.calls = 0

    def extract(self, paths):
        self.calls += 1
        return np.stack([np.asarray(Image.open(p).convert("RGB"), np.float64).mean(axis=(0, 1))
                         for p in paths])

    def arrays(self, features):
        return {"mean_colour": features.astype(np.float32)}


def _redness(inputs, params):
    red = inputs.features["mean_colour"][:, 0] / 255.0 * params["scale"]
    return MetricResult("redness", float(red.mean()), True, len(red), seed=inputs.seed,
                        extractor=dict(inputs.identities["mean_colour"]), params=dict(params),
                        per_sample=dict(zip(inputs.item_ids, red.tolist())))


REDNESS = Metric(MetricInfo("redness", True, "fraction", "mean red channel / 255",
                            display_name="Redness (plug-in)", scope="item", features=("mean_colour",),
                            column_order=5),
                 _redness, params={"scale": 1.0})
'''


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    (site / "redness_plugin").mkdir(parents=True)
    (site / "redness_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist = site / "redness_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: redness-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[trecs_eval.metrics]\nredness = redness_plugin:REDNESS\n\n"
        "[trecs_eval.extractors]\nmean_colour = redness_plugin:MeanColour\n")
    monkeypatch.syspath_prepend(str(site))
    for registry in (METRICS, EXTRACTORS):  # the shared registries read entry points once per process
        monkeypatch.setattr(registry, "_entry_points_loaded", False)
        monkeypatch.setattr(registry, "_items", dict(registry._items))
    return site


def _config(tmp_path: Path, eval_dir: Path, params: str) -> Path:
    path = tmp_path / "plugin.toml"
    path.write_text(f"""
name = "plugin"
out_dir = "{tmp_path / 'run'}"
image_size = 32
device = "cpu"
report_formats = ["md", "csv", "tex", "html"]
[dataset]
kind = "toyworld"
path = "{eval_dir}"
[[systems]]
name = "real"
[[systems]]
name = "noise"
[[metrics]]
name = "redness"
params = {params}
""", encoding="utf-8")
    return path


def test_plugin_metric_appears_in_every_report_format(plugin_on_path: Path, tmp_path: Path) -> None:
    eval_dir = build_toy_splits(tmp_path / "data", N_EVAL, 0, 0, size=32)["eval"]
    assert main(["run", str(_config(tmp_path, eval_dir, "{ scale = 2.0 }")), "-q"]) == 0
    run = tmp_path / "run"
    results = read_results(run)
    assert results.metric_info["redness"].display_name == "Redness (plug-in)"
    samples = pd.read_parquet(run / "samples.parquet")
    for system in ("real", "noise"):
        rows = samples[samples["system"] == system]
        # independent: the red channel of the image files the run wrote, by PIL and numpy
        expected = np.mean([np.asarray(Image.open(run / p))[..., 0].mean() / 255.0 * 2.0
                            for p in rows["image_path"]])
        assert results.metric(system, "redness").value == pytest.approx(expected, abs=MEAN_ABS_TOL)
        with np.load(run / "features" / f"{system}.npz") as feats:
            assert feats["mean_colour"].shape == (N_EVAL, 3)
    assert results.extractors["mean_colour"]["name"] == "mean-colour"
    report = run / "report"
    assert "Redness (plug-in) ↑" in (report / "summary.md").read_text()
    assert "redness_ci_low" in (report / "summary.csv").read_text()
    assert r"Redness (plug-in) $\uparrow$" in (report / "summary.tex").read_text()
    assert "Redness (plug-in)" in (report / "report.html").read_text()


def test_plugin_metric_unknown_param_fails_before_any_work(plugin_on_path: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, tmp_path / "absent", "{ scael = 2.0 }")
    assert main(["run", str(config), "-q"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"unknown parameter 'scael' \(did you mean 'scale'\?\)", err), err
    assert not (tmp_path / "run").exists()  # refused before the run directory was claimed

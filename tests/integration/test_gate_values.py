"""One number per metric: on a demo-shaped run holding EVERY registered metric, the gate's value
for run A equals the value the run reports, and the gate's estimator is the declared one.

The run is the demo's shape in miniature (toyworld, a TReCS system with canvases, retrieval, the
real images; the oracle segmenter; tiny calibrated CLIP, DINOv2 and Inception). The gate compares
the run with a copy of itself, so every tested row must also show no change.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from reports.compare import NO_CHANGE, NOT_COMPARED, compare_runs
from reports.load import load_run
from tests.harness_fixtures import build_toy_splits, tiny_clip_checkpoint
from tests.weights import calibrated_inception_weights_file
from trecs_eval.cli import main
from trecs_eval.metrics.registry import METRICS

pytestmark = pytest.mark.slow  # a full run of every registered metric: minutes on 2 cores
N = 50  # KID needs at least 50 images per side
SAME_STATISTIC_REL_TOL = 1e-9  # one statistic on the same float64 inputs, reached by two paths
SEGMENTED = ("trace_hit_rate", "seg_trace_accuracy", "seg_pixel_accuracy", "seg_miou")
SMALL = {"precision": "nearest_k = 3", "recall": "nearest_k = 3", "density": "nearest_k = 3",
         "coverage": "nearest_k = 3", "is": "splits = 2", "r_precision": "n_negatives = 5",
         "fid_inf": "n_points = 3, min_fraction = 0.5", "kid": "n_subsets = 10"}


def _metric_block(name: str) -> str:
    params = [SMALL[name]] if name in SMALL else []
    if name in SEGMENTED:
        params.append('segmenter = "toyworld_oracle"')
    if "n_resamples" in METRICS.get(name).params:
        params.append("n_resamples = 10")
    return f'[[metrics]]\nname = "{name}"\nparams = {{ {", ".join(params)} }}\n'


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trecs_eval.features import dinov2_weights

    root = tmp_path_factory.mktemp("gate_values")
    splits = build_toy_splits(root, N, N, N, size=32)
    clip_model, clip_path = tiny_clip_checkpoint(root / "clip")
    dino = root / "vits14.safetensors"
    dinov2_weights.make_calibrated_dinov2_weights(dino, "vits14", 0)
    config = root / "run.toml"
    config.write_text(f"""
name = "gate-values"
out_dir = "{root / 'run'}"
image_size = 32
device = "cpu"
report_formats = ["md"]
[dataset]
kind = "toyworld"
path = "{splits['eval']}"
train_dir = "{splits['train']}"
[reference]
kind = "images"
images = "{splits['real']}/images"
[extractors]
inception_weights = "{calibrated_inception_weights_file(tmp_path_factory)}"
clip_model = "{clip_model}"
clip_pretrained = "{clip_path}"
cmmd_clip_model = "{clip_model}"
cmmd_clip_pretrained = "{clip_path}"
dinov2_arch = "vits14"
dinov2_weights = "{dino}"
[[systems]]
name = "trecs-oracle"
generator = "trecs"
params = {{ tags = "oracle" }}
[[systems]]
name = "retrieval"
[[systems]]
name = "real"
{"".join(_metric_block(m) for m in METRICS.names())}""", encoding="utf-8")
    assert main(["-q", "run", str(config)]) == 0
    return root / "run"


def test_the_gate_reports_the_runs_own_value_for_every_registered_metric(run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run, tmp_path / "copy")
    loaded = load_run(run)
    assert set(loaded.metric_names) == set(METRICS.names())  # every registered metric is in the run
    gate = compare_runs(run, copy, allow_untestable=True)
    checked = set()
    for result in loaded.results.metrics:
        row = next(r for r in gate.rows if r.system == result.system and r.metric == result.name)
        assert row.estimator == loaded.info(result.name).resolved_estimator
        if not math.isfinite(result.value):  # unavailable for this system (declared rule)
            assert row.verdict == NOT_COMPARED and result.status in ("unavailable", "failed"), row
            continue
        assert row.value_a == pytest.approx(result.value, rel=SAME_STATISTIC_REL_TOL), row
        assert row.verdict in (NO_CHANGE, NOT_COMPARED) and (row.delta == 0.0 or math.isnan(row.delta)), row
        checked.add(result.name)
    assert checked == set(METRICS.names()), set(METRICS.names()) - checked
    pooled = [r for r in gate.rows if r.estimator == "pooled_ratio"]
    assert {r.metric for r in pooled} == {"canvas_pixel_accuracy", "canvas_miou", "seg_pixel_accuracy",
                                          "seg_miou"} and all(r.method for r in pooled if r.system == "real"
                                                              or r.metric.startswith("canvas"))

"""PRDC and segmenter-based trace adherence in a run, and FD-DINOv2 / CMMD / PRDC through
``trecs-eval metrics``: each number checked against an independent computation.

* PRDC of every system equals the ``prdc`` package (Naeem et al.'s code) on the run's own
  ``features/{system}.npz`` and ``features/reference.npz``.
* With the toyworld oracle segmenter, ``real`` (the evaluation items' own images) scores the gold
  maps' values: pixel accuracy and mIoU exactly 1, trace hit rate and trace accuracy equal to the
  metric functions applied to the gold maps directly; ``noise`` (unknown to the oracle: every
  pixel unlabeled) is ``unavailable`` with the count of unsegmented images, never a score of 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.harness_fixtures import build_toy_splits, tiny_clip_checkpoint
from tests.weights import calibrated_inception_weights_file, write_image_set
from trecs_eval.cli import main
from trecs_eval.data.evalset import load_toyworld, read_gold_segmentation
from trecs_eval.metrics import label_canvas, trace_hit
from trecs_eval.metrics.fid import features_to_fid
from trecs_eval.results import read_results

N = 12
PRDC_ABS_TOL_VS_PRDC_PACKAGE = 1e-12  # the same counts; only the float division may round differently
SAME_FUNCTION_ABS_TOL = 1e-12  # one metric function on the same maps, reached by two paths
FD_REL_TOL_VS_FID_CORE = 1e-9  # the FID core on the cached features, float64 both ways
SEGMENTER = '{ segmenter = "toyworld_oracle", n_resamples = 20 }'


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("newmetrics")
    splits = build_toy_splits(root, N, N, N, size=32)
    weights = calibrated_inception_weights_file(tmp_path_factory)
    metrics = "".join(f'[[metrics]]\nname = "{m}"\nparams = {{ n_resamples = 20 }}\n'
                      for m in ("precision", "recall", "density", "coverage"))
    metrics += "".join(f'[[metrics]]\nname = "{m}"\nparams = {SEGMENTER}\n'
                       for m in ("trace_hit_rate", "seg_trace_accuracy", "seg_pixel_accuracy", "seg_miou"))
    config = root / "run.toml"
    config.write_text(f"""
name = "newmetrics"
out_dir = "{root / 'run'}"
image_size = 32
device = "cpu"
report_formats = ["md", "csv", "tex", "html"]
[dataset]
kind = "toyworld"
path = "{splits['eval']}"
train_dir = "{splits['train']}"
[reference]
kind = "images"
images = "{splits['real']}/images"
[extractors]
inception_weights = "{weights}"
[[systems]]
name = "real"
[[systems]]
name = "retrieval"
[[systems]]
name = "noise"
{metrics}""", encoding="utf-8")
    assert main(["run", str(config), "-q"]) == 0
    return root


def test_prdc_equals_the_prdc_package_on_the_runs_features(run: Path) -> None:
    from prdc import compute_prdc

    results = read_results(run / "run")
    with np.load(run / "run" / "features" / "reference.npz") as ref:
        real = ref["inception_pool"]
    for system in ("real", "retrieval", "noise"):
        with np.load(run / "run" / "features" / f"{system}.npz") as feats:
            expected = compute_prdc(real, feats["inception_pool"], 5)
        for name in ("precision", "recall", "density", "coverage"):
            found = results.metric(system, name)
            assert found.value == pytest.approx(float(expected[name]), abs=PRDC_ABS_TOL_VS_PRDC_PACKAGE)
            assert found.params["features"] == "inception"
            assert found.extractor["name"] == "inception-v3-compat"


def test_oracle_segmenter_scores_real_images_at_their_gold_value(run: Path) -> None:
    results = read_results(run / "run")
    items = list(load_toyworld(run / "eval").items)
    gold = {it.item_id: read_gold_segmentation(it) for it in items}
    assert results.metric("real", "seg_pixel_accuracy").value == 1.0
    assert results.metric("real", "seg_miou").value == 1.0
    for name in ("seg_pixel_accuracy", "seg_miou", "seg_trace_accuracy", "trace_hit_rate"):
        unsegmented = results.metric("noise", name)
        assert unsegmented.status == "unavailable" and np.isnan(unsegmented.value), name
        assert unsegmented.params["unsegmented_images"] == unsegmented.n > 0
        assert "no label at all" in unsegmented.warnings[0]
    expected_hit = trace_hit.trace_hit_rate(items, gold, n_resamples=20).value
    expected_trace = label_canvas.trace_canvas_accuracy(items, gold, n_resamples=20).value
    same = SAME_FUNCTION_ABS_TOL
    assert results.metric("real", "trace_hit_rate").value == pytest.approx(expected_hit, abs=same)
    assert results.metric("real", "seg_trace_accuracy").value == pytest.approx(expected_trace, abs=same)
    assert results.metric("real", "trace_hit_rate").extractor["name"] == "oracle-gold-maps"


def test_new_metrics_appear_in_every_report_format(run: Path) -> None:
    report = run / "run" / "report"
    md, tex = (report / "summary.md").read_text(), (report / "summary.tex").read_text()
    csv, html = (report / "summary.csv").read_text(), (report / "report.html").read_text()
    for header in ("Precision", "Recall", "Density", "Coverage", "Trace hit rate", "Seg. trace acc.",
                   "Seg. pixel acc.", "Seg. mIoU"):
        assert f"{header} ↑" in md and header in tex and header in html, header
    for key in ("precision", "coverage", "trace_hit_rate", "seg_miou"):
        assert f"{key}_ci_low" in csv


def test_metrics_command_computes_fd_dinov2_cmmd_and_prdc(tmp_path: Path,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    from trecs_eval.features import dinov2_weights

    gen = write_image_set(tmp_path / "gen", 10, seed=41, px=32)[0].parent
    ref = write_image_set(tmp_path / "ref", 10, seed=42, px=32, darken=0.6)[0].parent
    dino = tmp_path / "vits14.safetensors"
    dinov2_weights.make_calibrated_dinov2_weights(dino, "vits14", 0)
    clip_model, clip_path = tiny_clip_checkpoint(tmp_path / "clip")
    out = tmp_path / "results.json"
    code = main(["metrics", "--generated", str(gen), "--reference", str(ref), "--device", "cpu", "-q",
                 "--metrics", "fd_dinov2,cmmd,precision,recall,density,coverage",
                 "--param", "precision.nearest_k=3",
                 "--inception-weights", str(calibrated_inception_weights_file(tmp_path_factory)),
                 "--dinov2-arch", "vits14", "--dinov2-weights", str(dino), "--cmmd-clip-model", clip_model,
                 "--cmmd-clip-pretrained", str(clip_path), "--out", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    found = {m["name"]: m for m in data["metrics"]}
    assert set(found) == {"fd_dinov2", "cmmd", "precision", "recall", "density", "coverage"}
    assert data["metric_info"]["fd_dinov2"]["display_name"] == "FD-DINOv2"
    assert found["precision"]["params"]["nearest_k"] == 3 and found["recall"]["params"]["nearest_k"] == 5
    # stand-in backbones are named so: never mistaken for the defined metrics
    assert not found["fd_dinov2"]["params"]["defines_fd_dinov2"]
    assert not found["cmmd"]["params"]["defines_cmmd"]
    assert any("defined on ViT-L/14" in w for w in found["fd_dinov2"]["warnings"])
    from trecs_eval.features.cache import FeatureCache
    from trecs_eval.features.dinov2 import DinoV2Extractor

    extractor = DinoV2Extractor(arch="vits14", weights=str(dino), device="cpu", progress=False,
                                cache=FeatureCache(tmp_path / "independent.sqlite"))
    g = extractor.extract(sorted(gen.glob("*.png"))).features
    r = extractor.extract(sorted(ref.glob("*.png"))).features
    assert found["fd_dinov2"]["value"] == pytest.approx(features_to_fid(g, r)[0], rel=FD_REL_TOL_VS_FID_CORE)

"""``trecs-eval run`` end to end on a tiny toyworld: the run-directory contract, numbers checked
against independent computations, resume / hash / --force rules, and on_missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
from PIL import Image

from tests.harness_fixtures import build_toy_splits, tiny_clip_checkpoint
from tests.weights import calibrated_inception_weights_file
from trecs_eval.cli import main
from trecs_eval.config import config_hash, load_config
from trecs_eval.data.localized_narratives import read_narratives
from trecs_eval.generation.runner import read_provenance
from trecs_eval.results import read_results

N_EVAL, N_TRAIN, N_REAL = 16, 32, 16
FID_REL_TOL_VS_SCIPY_SQRTM = 1e-4  # eigh vs sqrtm on singular (n < d) covariances, float64
MEAN_ABS_TOL = 1e-12  # a mean recomputed from samples.parquet: the same floats summed again
SYSTEMS = """
[[systems]]
name = "trecs-oracle"
generator = "trecs"
params = { tags = "oracle" }
[[systems]]
name = "trecs-no-trace"
generator = "trecs"
params = { tags = "oracle", ignore_traces = true }
[[systems]]
name = "real"
[[systems]]
name = "noise"
"""
METRICS = """
[[metrics]]
name = "fid"
params = { n_resamples = 20 }
[[metrics]]
name = "is"
params = { n_resamples = 20, splits = 2 }
[[metrics]]
name = "clip_score"
params = { n_resamples = 200 }
[[metrics]]
name = "r_precision"
params = { n_negatives = 10, n_resamples = 200 }
[[metrics]]
name = "trace_canvas_accuracy"
params = { n_resamples = 200 }
[[metrics]]
name = "canvas_miou"
params = { n_resamples = 50 }
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    root = tmp_path_factory.mktemp("toy")
    paths: dict[str, Path | str] = dict(build_toy_splits(root, N_EVAL, N_TRAIN, N_REAL))
    paths["inception"] = calibrated_inception_weights_file(tmp_path_factory)
    paths["clip_model"], paths["clip"] = tiny_clip_checkpoint(root / "clip")
    paths["root"] = root
    return paths


def write_config(setup: dict[str, Path | str], out: Path, systems: str = SYSTEMS, metrics: str = METRICS,
                 extra: str = 'report_formats = ["md"]', name: str | None = None) -> Path:
    text = f"""
name = "t"
out_dir = "{out}"
seed = 0
image_size = 64
batch_size = 8
device = "cpu"
{extra}
[dataset]
kind = "toyworld"
path = "{setup['eval']}"
train_dir = "{setup['train']}"
[reference]
kind = "images"
images = "{setup['real']}/images"
[extractors]
inception_weights = "{setup['inception']}"
clip_model = "{setup['clip_model']}"
clip_pretrained = "{setup['clip']}"
batch_size = 16
{systems}
{metrics}
"""
    path = out.parent / f"{name or out.name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_run(setup: dict[str, Path | str], capsys: pytest.CaptureFixture[str]) -> None:
    """One run (the expensive part) checked from every side, in order."""
    out = Path(setup["root"]) / "run"
    config = write_config(setup, out, extra='report_formats = ["md", "html"]')
    assert main(["run", str(config), "-q"]) == 0
    check_run_directory_contract(out, config)
    check_numbers_against_independent_computations(out)
    check_ranking(out)
    check_resume_and_force(out, config, setup, capsys)


def check_run_directory_contract(out: Path, config: Path) -> None:
    assert (out / "config.hash").read_text().strip() == config_hash(load_config(config))
    assert load_config(out / "config.toml") == load_config(config)
    results = read_results(out)
    systems = ["trecs-oracle", "trecs-no-trace", "real", "noise"]
    assert [s.name for s in results.systems] == systems
    assert all(s.n_items == N_EVAL for s in results.systems)
    assert results.extractors["inception"]["weights_sha256"] and results.extractors["clip"]
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(samples) == len(systems) * N_EVAL
    for column in ("item_id", "system", "image_path", "canvas_path", "reference_path", "narrative",
                   "n_words", "n_trace_points", "clip_score", "r_precision", "r_precision_rank",
                   "trace_canvas_accuracy"):
        assert column in samples.columns, column
    assert all((out / p).is_file() for p in samples["image_path"])
    has_canvas = samples.dropna(subset=["canvas_path"])
    assert set(has_canvas["system"]) == {"trecs-oracle", "trecs-no-trace"}
    assert all((out / p).is_file() for p in has_canvas["canvas_path"])
    narratives = read_narratives(out / "narratives.jsonl").narratives
    item_ids = [n.item_id for n in narratives]
    assert len(item_ids) == N_EVAL
    for system in systems:
        with np.load(out / "features" / f"{system}.npz") as feats:
            assert list(feats["item_ids"]) == item_ids
            assert feats["inception_pool"].shape == (N_EVAL, 2048)
            assert feats["inception_logits"].shape == (N_EVAL, 1008)
            assert feats["clip_image"].shape[0] == N_EVAL
    with np.load(out / "features" / "reference.npz") as ref:
        assert ref["inception_pool"].shape == (N_REAL, 2048)
    assert (out / "report" / "report.html").is_file() and (out / "report" / "summary.md").is_file()


def check_numbers_against_independent_computations(out: Path) -> None:
    results = read_results(out)
    with np.load(out / "features" / "reference.npz") as ref:
        ref_pool = ref["inception_pool"].astype(np.float64)
    samples = pd.read_parquet(out / "samples.parquet")
    for system in ("real", "noise", "trecs-oracle"):
        with np.load(out / "features" / f"{system}.npz") as feats:
            pool = feats["inception_pool"].astype(np.float64)
        expected = scipy_fid(pool, ref_pool)
        assert results.metric(system, "fid").value == pytest.approx(expected, rel=FID_REL_TOL_VS_SCIPY_SQRTM)
        rows = samples[samples["system"] == system]
        for metric in ("clip_score", "r_precision"):
            expected_mean = rows[metric].mean()
            assert results.metric(system, metric).value == pytest.approx(expected_mean, abs=MEAN_ABS_TOL)
    oracle = samples[samples["system"] == "trecs-oracle"]["trace_canvas_accuracy"]
    assert results.metric("trecs-oracle", "trace_canvas_accuracy").value == pytest.approx(
        oracle.mean(), abs=MEAN_ABS_TOL)


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    """FID by the textbook formula with scipy.linalg.sqrtm (independent of trecs_eval.metrics)."""
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def check_ranking(out: Path) -> None:
    results = read_results(out)
    fid = {s.name: results.metric(s.name, "fid").value for s in results.systems}
    assert min(fid, key=fid.__getitem__) == "real" and max(fid, key=fid.__getitem__) == "noise"
    oracle = results.metric("trecs-oracle", "trace_canvas_accuracy").value
    assert oracle > results.metric("trecs-no-trace", "trace_canvas_accuracy").value
    assert results.metric("noise", "trace_canvas_accuracy") is None  # no canvas: not applicable


def check_resume_and_force(out: Path, config: Path, setup: dict[str, Path | str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    before = read_results(out)
    provenance = {s: read_provenance(out, s) for s in ("real", "noise", "trecs-oracle")}
    image = out / "images" / "noise" / f"{provenance['noise'][0]['item_id']}.png"
    mtime = image.stat().st_mtime_ns
    assert main(["run", str(config), "-q"]) == 0  # same config: nothing generated again
    assert {s: read_provenance(out, s) for s in provenance} == provenance
    again = read_results(out)
    assert [(m.system, m.name, m.value) for m in again.metrics] == [(m.system, m.name, m.value)
                                                                   for m in before.metrics]
    extended = SYSTEMS + ('[[systems]]\nname = "flat"\ngenerator = "mean-color"\n'
                          'params = { color = [9, 9, 9] }\n')
    changed = write_config(setup, out, systems=extended, extra='report_formats = ["md", "html"]',
                           name="changed")
    capsys.readouterr()
    assert main(["run", str(changed), "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds a run of another config" in err and "systems: added 'flat'" in err and "--force" in err
    assert "Traceback" not in err
    assert main(["run", str(changed), "-q", "--force"]) == 0
    assert {s: read_provenance(out, s) for s in provenance} == provenance  # others untouched
    assert len(read_provenance(out, "flat")) == N_EVAL
    assert image.stat().st_mtime_ns == mtime
    flat = np.asarray(Image.open(out / "images" / "flat" / image.name))
    assert (flat == 9).all()
    assert read_results(out).metric("flat", "fid") is not None


def test_on_missing_stop_and_intersect(setup: dict[str, Path | str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    released = tmp_path / "released"
    released.mkdir()
    eval_images = sorted((Path(setup["eval"]) / "images").glob("*.png"))
    for path in eval_images[:-3]:  # the last three items have no precomputed image
        Image.open(path).save(released / path.name)
    systems = f'[[systems]]\nname = "released"\ngenerator = "folder"\nparams = {{ path = "{released}" }}\n'
    metrics = '[[metrics]]\nname = "clip_score"\nparams = { n_resamples = 100 }\n'
    stop = write_config(setup, tmp_path / "stop", systems=systems, metrics=metrics)
    assert main(["run", str(stop), "-q"]) == 2
    err = capsys.readouterr().err
    assert "released: 3 missing" in err and eval_images[-1].stem in err and "intersect" in err
    intersect = write_config(setup, tmp_path / "intersect", systems=systems, metrics=metrics,
                             extra='on_missing = "intersect"\nreport_formats = ["md"]')
    assert main(["run", str(intersect), "-q"]) == 0
    results = read_results(tmp_path / "intersect")
    assert results.metric("released", "clip_score").n == N_EVAL - 3
    assert any(f"evaluating {N_EVAL - 3} of {N_EVAL} items" in w for w in results.warnings)
    info = results.systems[0]
    assert set(info.missing_items) == {p.stem for p in eval_images[-3:]}
    raw = json.loads((tmp_path / "intersect" / "results.json").read_text())
    assert raw["dataset"]["on_missing"] == "intersect"

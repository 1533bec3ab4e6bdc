"""The Ray engine gives the local engine's run directory: a demo-shaped toyworld run on a local Ray
cluster (2 CPUs) against the same run on the local engine, and a generation worker killed by
``kill -9`` mid-run, retried by Ray, with nothing generated twice."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.harness_fixtures import build_toy_splits, tiny_clip_checkpoint
from tests.ray_support import RAY_TEST_CPUS, RAY_TEST_OBJECT_STORE_BYTES
from tests.weights import calibrated_inception_weights_file
from trecs_eval.cli import main
from trecs_eval.generation.protocol import GENERATORS
from trecs_eval.generation.runner import read_provenance
from trecs_eval.results import read_results

N_EVAL = 50  # KID needs 50 images per side
N_KILL = 16
FID_KID_REL_TOL = 1e-10  # the engine's promised bound; the features are bit-identical, so in fact 0
KILL_AFTER_IMAGES = 4
WAIT_S = 300  # generous: CI machines start Ray workers slowly under load
ENGINE_KEYS = ("created", "timings", "execution")  # what may differ between engines
SYSTEMS = """
[[systems]]
name = "trecs-oracle"
generator = "trecs"
params = { tags = "oracle" }
[[systems]]
name = "real"
"""
METRICS = """
[[metrics]]
name = "fid"
params = { n_resamples = 10 }
[[metrics]]
name = "kid"
params = { n_resamples = 10, n_subsets = 10 }
[[metrics]]
name = "is"
params = { n_resamples = 10, splits = 2 }
[[metrics]]
name = "clip_score"
params = { n_resamples = 50 }
[[metrics]]
name = "r_precision"
params = { n_negatives = 9, n_resamples = 50 }
[[metrics]]
name = "trace_canvas_accuracy"
params = { n_resamples = 50 }
[[metrics]]
name = "canvas_miou"
params = { n_resamples = 20 }
"""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local Ray cluster for the module (its start-up costs seconds), no dashboard, small store."""
    import ray

    from trecs_eval.execution.ray_cluster import local_cluster_options

    ray.init(**local_cluster_options(RAY_TEST_CPUS, RAY_TEST_OBJECT_STORE_BYTES))
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ray-toy")
    paths: dict[str, Any] = dict(build_toy_splits(root, N_EVAL, 24, 0, size=32))
    # calibrated random Inception weights as a file (what uncalibrated runs make in the user cache;
    # calibrating costs minutes, so the test process makes them once)
    paths["inception"] = calibrated_inception_weights_file(tmp_path_factory)
    paths["clip_model"], paths["clip"] = tiny_clip_checkpoint(root / "clip")
    paths["root"] = root
    return paths


def write_config(toy: dict[str, Any], out: Path, engine: str, systems: str = SYSTEMS,
                 metrics: str = METRICS, execution: str = "", limit: int = N_EVAL) -> Path:
    text = f"""
name = "ray-vs-local"
out_dir = "{out}"
seed = 3
image_size = 32
batch_size = 4
device = "cpu"
report_formats = ["md"]
[dataset]
kind = "toyworld"
path = "{toy['eval']}"
train_dir = "{toy['train']}"
limit = {limit}
[reference]
kind = "eval"
[extractors]
inception_weights = "{toy['inception']}"
clip_model = "{toy['clip_model']}"
clip_pretrained = "{toy['clip']}"
batch_size = 8
[execution]
engine = "{engine}"
shard_batches = 1
{execution}
{systems}
{metrics}
"""
    path = out.parent / f"{out.name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without what differs between any two runs (when, how fast, where) or between
    engines (``execution``), and without metric values (compared with a tolerance below)."""
    data = {k: v for k, v in results.items() if k not in ENGINE_KEYS}
    data["config"] = {k: v for k, v in data["config"].items() if k not in ("execution", "out_dir")}
    data["systems"] = [{**s, "generation": {k: v for k, v in s.get("generation", {}).items()
                                            if k != "images_per_s"}} for s in data["systems"]]
    data["metrics"] = [{k: v for k, v in m.items() if k != "value"} for m in data["metrics"]]
    return data


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every differing leaf of two JSON values, so that one failing run shows them all."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]


@pytest.mark.slow  # two full runs (local, then Ray) of 2 systems x 50 items: ~1-2 min on 2 idle cores
def test_ray_run_equals_local_run(ray_cluster: Any, toy: dict[str, Any], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRECS_EVAL_CACHE", str(tmp_path / "cache-local"))
    local = tmp_path / "local"
    assert main(["run", str(write_config(toy, local, "local")), "-q"]) == 0
    monkeypatch.setenv("TRECS_EVAL_CACHE", str(tmp_path / "cache-ray"))  # every forward pass on Ray
    on_ray = tmp_path / "ray"
    assert main(["run", str(write_config(toy, on_ray, "ray")), "-q"]) == 0

    a, b = (json.loads((d / "results.json").read_text()) for d in (local, on_ray))
    assert b["execution"]["engine"] == "ray" and b["execution"]["cpus"] == RAY_TEST_CPUS
    assert b["execution"]["workers"] == RAY_TEST_CPUS and a["execution"]["engine"] == "local"
    assert set(b["timings"]) == set(a["timings"]) and "generate" in b["timings"]
    assert not differences(comparable(a), comparable(b))
    for ma, mb in zip(a["metrics"], b["metrics"], strict=True):
        if ma["name"] in ("fid", "kid"):
            assert abs(ma["value"] - mb["value"]) <= FID_KID_REL_TOL * abs(ma["value"])
        else:
            assert ma["value"] == mb["value"], ma["name"]
    for npz in sorted((local / "features").glob("*.npz")):
        with np.load(npz) as fa, np.load(on_ray / "features" / npz.name) as fb:
            for key in fa.files:  # bit-identical features
                assert np.array_equal(fa[key], fb[key]), (npz.name, key)
    pd.testing.assert_frame_equal(pd.read_parquet(local / "samples.parquet"),
                                  pd.read_parquet(on_ray / "samples.parquet"))
    for image in sorted((local / "images").rglob("*.png")):
        assert image.read_bytes() == (on_ray / image.relative_to(local)).read_bytes()
    for system in ("trecs-oracle", "real"):
        assert sorted(r["item_id"] for r in read_provenance(on_ray, system)) == \
            sorted(r["item_id"] for r in read_provenance(local, system))
    assert (local / "report" / "summary.md").read_text() == (on_ray / "report" / "summary.md").read_text()
    assert not list(on_ray.rglob("*.tmp")) and not list((on_ray / "provenance").rglob(".parts/*/*"))


def kill_first_worker(pid_dir: Path, images: Path, killed: list[int]) -> None:
    """Once KILL_AFTER_IMAGES images exist, ``kill -9`` a generation worker that is still working."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        pids = sorted(int(p.name) for p in pid_dir.glob("*")) if pid_dir.is_dir() else []
        if pids and len(list(images.glob("*.png"))) >= KILL_AFTER_IMAGES:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
            return
        time.sleep(0.02)


@pytest.mark.slow  # Ray workers (generation, then features) each import torch: ~30 s on 2 idle cores
def test_killed_generation_worker_is_retried_and_nothing_is_generated_twice(
        ray_cluster: Any, toy: dict[str, Any], tmp_path: Path) -> None:
    GENERATORS.register("pid-slow-noise", "tests.ray_support:PidSlowNoiseGenerator")
    pid_dir = tmp_path / "pids"
    systems = f"""
[[systems]]
name = "slow"
generator = "pid-slow-noise"
params = {{ pid_dir = "{pid_dir}", seconds = 0.2 }}
"""
    metrics = '[[metrics]]\nname = "is"\nparams = { n_resamples = 5, splits = 2 }\n'
    out = tmp_path / "killed"
    config = write_config(toy, out, "ray", systems, metrics, "workers = 2", limit=N_KILL)
    images = out / "images" / "slow"
    killed: list[int] = []
    killer = threading.Thread(target=kill_first_worker, args=(pid_dir, images, killed), daemon=True)
    killer.start()
    assert main(["run", str(config), "-q"]) == 0
    killer.join(timeout=5)
    assert killed, "no worker was killed: the run finished before the test could kill one"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # it is really gone
    assert len(list(pid_dir.glob("*"))) >= 2  # another process (the restarted worker) took over

    assert read_results(out).systems[0].n_items == N_KILL == len(list(images.glob("*.png")))
    generated = [r["item_id"] for r in read_provenance(out, "slow")]
    assert len(generated) == len(set(generated))  # no item generated twice
    # an item whose image was written just before the kill may lack its provenance line (the local
    # runner has the same window between the image and the line); at most one per kill
    assert len(generated) >= N_KILL - len(killed)
    assert not list(out.rglob("*.tmp")) and not list((out / "provenance").rglob(".parts/*/*"))

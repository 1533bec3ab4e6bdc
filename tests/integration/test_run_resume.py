"""A run interrupted by Ctrl-C and then by ``kill -9`` resumes to exactly the results of a clean run,
generating no image twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness_fixtures import build_toy_splits, tiny_clip_checkpoint
from tests.weights import calibrated_inception_weights_file
from trecs_eval.generation.runner import read_provenance

REPO = Path(__file__).resolve().parents[2]
N_ITEMS = 16
WAIT_FOR_IMAGES_S = 300  # generous: CI machines start torch slowly under load
# The run runs in a child process (so it can be killed); the tiny test CLIP and the slow
# generator are registered there before the CLI starts, as a plug-in package would be.
CHILD = """
import sys
from pathlib import Path
from tests.clip_support import register_tiny_clip
register_tiny_clip(Path(sys.argv[1]))
from trecs_eval.generation.protocol import GENERATORS
GENERATORS.register("slow-noise", "tests.harness_fixtures:SlowNoiseGenerator")
from trecs_eval.cli import main
sys.exit(main(sys.argv[2:]))
"""


def write_config(out: Path, toy: dict[str, Path], inception: Path, clip_model: str, clip: Path) -> Path:
    text = f"""
name = "resume"
out_dir = "{out}"
seed = 5
image_size = 48
batch_size = 2
device = "cpu"
report_formats = ["md"]
[dataset]
kind = "toyworld"
path = "{toy['eval']}"
[reference]
kind = "eval"
[extractors]
inception_weights = "{inception}"
clip_model = "{clip_model}"
clip_pretrained = "{clip}"
[[systems]]
name = "slow"
generator = "slow-noise"
[[systems]]
name = "real"
[[metrics]]
name = "fid"
params = {{ n_resamples = 10 }}
[[metrics]]
name = "is"
params = {{ n_resamples = 10, splits = 2 }}
[[metrics]]
name = "clip_score"
params = {{ n_resamples = 100 }}
"""
    path = out.with_suffix(".toml")
    path.write_text(text, encoding="utf-8")
    return path


def start(config: Path, cache: Path, clip_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TRECS_EVAL_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(clip_dir), "run", str(config), "-q"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_when(proc: subprocess.Popen[str], images: Path, at_least: int, sig: int) -> tuple[int, str]:
    deadline = time.monotonic() + WAIT_FOR_IMAGES_S
    while len(list(images.glob("*.png"))) < at_least:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run ended or stalled before {at_least} images: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def metric_values(out: Path) -> list[tuple[str, str, float, float, float]]:
    data = json.loads((out / "results.json").read_text())
    return [(m["system"], m["name"], m["value"], m["ci_low"], m["ci_high"]) for m in data["metrics"]]


def test_interrupted_and_killed_run_resumes_to_the_clean_result(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    toy = build_toy_splits(tmp_path / "toy", N_ITEMS, 0, 0, size=48)
    clip_model, clip = tiny_clip_checkpoint(tmp_path / "clip")
    inception = calibrated_inception_weights_file(tmp_path_factory)
    out = tmp_path / "interrupted"
    config = write_config(out, toy, inception, clip_model, clip)
    images = out / "images" / "slow"

    code, err = stop_when(start(config, tmp_path / "cache-a", tmp_path / "clip"), images, 3, signal.SIGINT)
    assert code == 130 and "re-run the same command to resume" in err and "Traceback" not in err
    after_interrupt = len(list(images.glob("*.png")))
    code, _ = stop_when(start(config, tmp_path / "cache-a", tmp_path / "clip"), images, after_interrupt + 3,
                        signal.SIGKILL)
    assert code == -signal.SIGKILL
    after_kill = len(list(images.glob("*.png")))
    assert after_interrupt < after_kill < N_ITEMS
    assert not (out / "results.json").exists()

    resumed = start(config, tmp_path / "cache-a", tmp_path / "clip")
    assert resumed.wait(timeout=600) == 0, resumed.communicate()[1][-2000:]
    generated = [r["item_id"] for r in read_provenance(out, "slow")]
    assert len(generated) == len(set(generated))  # no image generated twice
    assert len(list(images.glob("*.png"))) == N_ITEMS
    assert not list(out.rglob("*.tmp"))

    clean_out = tmp_path / "clean"
    clean = start(write_config(clean_out, toy, inception, clip_model, clip), tmp_path / "cache-b",
                  tmp_path / "clip")
    assert clean.wait(timeout=600) == 0, clean.communicate()[1][-2000:]
    assert metric_values(out) == metric_values(clean_out)
    for item in generated:
        clean_image = clean_out / "images" / "slow" / f"{item}.png"
        assert (images / f"{item}.png").read_bytes() == clean_image.read_bytes()

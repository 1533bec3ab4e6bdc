"""Ctrl-C stops a run in every phase (exit 130, the resume hint, no traceback, nothing finished lost),
and a run interrupted by Ctrl-C and then by ``kill -9`` resumes to exactly the results of a clean
run, generating no image twice.

The run runs in a child process (so it can be signalled). A gate (``tests/interrupt_gates.py``)
holds the child inside the phase under test and tells the test so through a marker file; only
then is the signal sent, so it always lands in that phase. Ctrl-C is sent as a terminal sends it:
to the child's whole process group (its DataLoader worker too).
"""

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
from trecs_eval.features.cache import CACHE_FILENAME, FeatureCache
from trecs_eval.generation.runner import read_provenance
from trecs_eval.results import read_results

REPO = Path(__file__).resolve().parents[2]
N_ITEMS = 16
BATCH = 2
WAIT_FOR_GATE_S = 600  # generous: CI machines start torch slowly under load
RESUME_HINT = "re-run the same command to resume"
# The tiny test CLIP, the gated generator and the gate are set up in the child before the CLI
# starts, as a plug-in package would be: argv = clip dir, phase, calls let through, marker, CLI args.
CHILD = """
import sys
from pathlib import Path
from tests.clip_support import register_tiny_clip
register_tiny_clip(Path(sys.argv[1]))
from trecs_eval.generation.protocol import GENERATORS
GENERATORS.register("gated-noise", "tests.harness_fixtures:GatedNoiseGenerator")
from tests.interrupt_gates import install_gate
install_gate(sys.argv[2], Path(sys.argv[4]), int(sys.argv[3]) if sys.argv[3] else None)
from trecs_eval.cli import main
sys.exit(main(sys.argv[5:]))
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
generator = "gated-noise"
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


def start(config: Path, cache: Path, clip_dir: Path, gate: str = "none", after: int | None = None
          ) -> tuple[subprocess.Popen[str], Path]:
    """The child run, held by a gate at ``gate``; returns it and the marker the gate writes."""
    marker = config.with_name(f"{config.stem}-{gate}-{after}.reached")
    marker.unlink(missing_ok=True)
    env = {**os.environ, "TRECS_EVAL_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    gate_args = [gate, "" if after is None else str(after), str(marker)]
    argv = [sys.executable, "-c", CHILD, str(clip_dir), *gate_args, "run", str(config), "-q"]
    proc = subprocess.Popen(argv,
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as a terminal job
    return proc, marker


def signal_at_gate(proc: subprocess.Popen[str], marker: Path, sig: int) -> tuple[int, str]:
    """Wait until the child is held at its gate, send ``sig`` (SIGINT to the whole process group,
    as Ctrl-C in a terminal), and return (exit code, stderr)."""
    deadline = time.monotonic() + WAIT_FOR_GATE_S
    while not marker.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run ended or stalled before its gate: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
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

    # Ctrl-C before the 2nd batch, then kill -9 before the resumed run's 3rd batch
    code, err = signal_at_gate(*start(config, tmp_path / "cache-a", tmp_path / "clip", "generate", 1),
                               signal.SIGINT)
    assert code == 130 and RESUME_HINT in err and "Traceback" not in err, err[-2000:]
    after_interrupt = len(list(images.glob("*.png")))
    assert after_interrupt == BATCH
    code, _ = signal_at_gate(*start(config, tmp_path / "cache-a", tmp_path / "clip", "generate", 2),
                             signal.SIGKILL)
    assert code == -signal.SIGKILL
    after_kill = len(list(images.glob("*.png")))
    assert after_kill == after_interrupt + 2 * BATCH < N_ITEMS
    assert not (out / "results.json").exists()

    resumed, _ = start(config, tmp_path / "cache-a", tmp_path / "clip")
    assert resumed.wait(timeout=600) == 0, resumed.communicate()[1][-2000:]
    generated = [r["item_id"] for r in read_provenance(out, "slow")]
    assert len(generated) == len(set(generated))  # no image generated twice
    assert len(list(images.glob("*.png"))) == N_ITEMS
    assert not list(out.rglob("*.tmp"))

    clean_out = tmp_path / "clean"
    clean, _ = start(write_config(clean_out, toy, inception, clip_model, clip), tmp_path / "cache-b",
                     tmp_path / "clip")
    assert clean.wait(timeout=600) == 0, clean.communicate()[1][-2000:]
    assert metric_values(out) == metric_values(clean_out)
    for item in generated:
        clean_image = clean_out / "images" / "slow" / f"{item}.png"
        assert (images / f"{item}.png").read_bytes() == clean_image.read_bytes()


N_SMALL = 6
STAGE_OF_PHASE = {"generate": "generate", "features": "features and metrics",
                  "metrics": "features and metrics", "report": "report"}


def write_small_config(out: Path, toy: dict[str, Path], inception: Path) -> Path:
    """One gated system, FID only, batches of 2 images for generation and features."""
    text = f"""
name = "ctrl-c"
out_dir = "{out}"
seed = 5
image_size = 48
batch_size = {BATCH}
device = "cpu"
report_formats = ["md"]
[dataset]
kind = "toyworld"
path = "{toy['eval']}"
limit = {N_SMALL}
[reference]
kind = "eval"
[extractors]
inception_weights = "{inception}"
batch_size = {BATCH}
[[systems]]
name = "gated"
generator = "gated-noise"
[[metrics]]
name = "fid"
params = {{ n_resamples = 10 }}
"""
    path = out.with_suffix(".toml")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_run_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    toy = build_toy_splits(tmp_path_factory.mktemp("toy"), N_SMALL, 0, 0, size=48)
    return toy, calibrated_inception_weights_file(tmp_path_factory)


@pytest.mark.parametrize("phase", list(STAGE_OF_PHASE))
def test_ctrl_c_in_any_phase_stops_the_run_and_keeps_finished_work(phase: str, tmp_path: Path,
                                                                   small_run_inputs) -> None:
    toy, inception = small_run_inputs
    out = tmp_path / "run"
    cache = tmp_path / "cache"
    config = write_small_config(out, toy, inception)
    code, err = signal_at_gate(*start(config, cache, tmp_path, phase), signal.SIGINT)
    assert code == 130, err[-2000:]
    assert RESUME_HINT in err and "Traceback" not in err and "Exception ignored" not in err, err[-2000:]
    assert f"run stopped during stage {STAGE_OF_PHASE[phase]!r}" in err
    images = sorted(p.stem for p in (out / "images" / "gated").glob("*.png"))
    provenance = sorted(r["item_id"] for r in read_provenance(out, "gated"))
    assert images == provenance  # every image on disk is recorded, and none is half-written
    assert not list(out.rglob("*.tmp"))
    assert len(images) == (BATCH if phase == "generate" else N_SMALL)
    if phase != "generate":  # features: the batch finished before the gate is in the cache
        assert FeatureCache(cache / CACHE_FILENAME).count() >= BATCH
    assert (out / "results.json").is_file() == (phase == "report")
    if phase == "report":
        assert {m.name for m in read_results(out).metrics} == {"fid"}

"""The ``diffusers`` and ``gligen`` systems through ``trecs-eval run`` on toyworld, with tiny random
models of the real diffusers/transformers classes saved as local pipeline folders
(:mod:`tests.diffusion_support`): images of the requested size, seeds reproduce bytes, a
``kill -9`` resumes without regenerating finished items, the trace boxes reach GLIGEN's UNet, and
``configs/toy_diffusion.toml`` runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.diffusion_support import build_tiny_pipeline
from trecs_eval.cli import main
from trecs_eval.data.evalset import load_toyworld
from trecs_eval.data.toyworld import write_toyworld
from trecs_eval.generation.runner import read_provenance
from trecs_eval.metrics.label_canvas import points_for_words

REPO = Path(__file__).resolve().parents[2]
SIZE = 32
N_ITEMS = 6
BOX_ABS_TOL = 1e-6  # boxes travel as float32 tensors into the UNet
GROWTH = 1.4  # compose's TRACE_BOX_GROWTH, restated: the expected boxes are computed here by hand
MIN_SIDE = 1 / 16
WAIT_S = 300
BATCH_ROUNDING_LEVELS = 2  # batched vs single calls: float kernels may round differently


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {kind: build_tiny_pipeline(root / kind, kind) for kind in ("sd", "gligen")}


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "eval"
    write_toyworld(path, n=N_ITEMS, seed=0, image_size=SIZE, shifted=False, progress=False)
    return path


def write_config(out: Path, toy: Path, models: dict[str, Path], *, seed: int = 3, systems: str = "sd gligen",
                 gligen_extra: str = "", batch_size: int = 2, steps: int = 2) -> Path:
    blocks = {
        "sd": f'[[systems]]\nname = "sd"\ngenerator = "diffusers"\nparams = {{ model = "{models["sd"]}", '
              f'text_policy = "whole_utterances", steps = {steps}, image_size = {SIZE} }}\n',
        "gligen": f'[[systems]]\nname = "gligen"\ngenerator = "gligen"\n'
                  f'params = {{ model = "{models["gligen"]}", text_policy = "truncate", steps = {steps}, '
                  f'image_size = {SIZE}, tags = "oracle"'
                  f'{gligen_extra} }}\n',
    }
    text = (f'name = "diffusion"\nout_dir = "{out}"\nseed = {seed}\nimage_size = {SIZE}\n'
            f'batch_size = {batch_size}\ndevice = "cpu"\nreport_formats = ["md"]\n'
            f'[dataset]\nkind = "toyworld"\npath = "{toy}"\n[reference]\nkind = "eval"\n'
            + "".join(blocks[s] for s in systems.split()))
    path = out.with_suffix(".toml")
    path.write_text(text, encoding="utf-8")
    return path


def run(config: Path) -> dict:
    assert main(["run", str(config), "-q"]) == 0
    return json.loads((config.with_suffix("") / "results.json").read_text())


def image_bytes(out: Path, system: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "images" / system).glob("*.png"))}


@pytest.mark.slow  # three runs of two systems
def test_both_systems_generate_sized_images_and_seeds_reproduce_bytes(tmp_path, toy, models):
    first = run(write_config(tmp_path / "a", toy, models))
    run(write_config(tmp_path / "b", toy, models, batch_size=3))  # other batches: the same bytes
    run(write_config(tmp_path / "c", toy, models, seed=4))
    for system in ("sd", "gligen"):
        a, b, c = (image_bytes(tmp_path / x, system) for x in "abc")
        assert len(a) == N_ITEMS and a == b  # same seed, same bytes, whatever the batches
        assert all(a[k] != c[k] for k in a)  # another run seed, other latents
        for name in a:
            with Image.open(tmp_path / "a" / "images" / system / name) as img:
                assert img.size == (SIZE, SIZE) and img.mode == "RGB"
                pixels = np.asarray(img)
            assert pixels.std() > 0  # a decoded latent, not a blank
    info = {s["name"]: s["generation"] for s in first["systems"]}
    for system, policy in (("sd", "whole_utterances"), ("gligen", "truncate")):
        g = info[system]
        assert g["scheduler"] == "DDIMScheduler" and g["steps"] == 2 and g["dtype"] == "float32"
        assert g["prompt_policy"] == policy and g["guidance_scale"] == 7.5 and "item_seed" in g["seed_policy"]
        assert len(g["model_sha256"]) == 64 and g["images_per_s"] > 0
        assert 0 < g["n_truncated_prompts"] <= N_ITEMS  # toyworld narratives pass 77 tokens here
    assert info["sd"]["pipeline"] == "StableDiffusionPipeline"
    assert info["gligen"]["pipeline"] == "StableDiffusionGLIGENPipeline" and info["gligen"]["n_boxes"] > 0


def expected_boxes(item) -> list[list[float]]:
    """Boxes by hand: runs of equal gold COCO-Stuff tags, the bbox of their words' trace points
    (clipped to the image) grown 1.4x about its centre, clipped, sides widened to 1/16."""
    from trecs_eval.data.coco_stuff import NAME_TO_ID

    words, tags = item.narrative.words, item.gold_tags
    points = points_for_words(item.narrative, words)
    boxes, start = [], 0
    for i in range(1, len(tags) + 1):
        if i == len(tags) or tags[i] != tags[start]:
            pts = [p for p in points[start:i] if len(p)]
            if tags[start] in NAME_TO_ID and pts:
                xy = np.clip(np.concatenate(pts), 0, 1)
                box = []
                for axis in (0, 1):
                    lo, hi = xy[:, axis].min(), xy[:, axis].max()
                    mid, half = (lo + hi) / 2, (hi - lo) * GROWTH / 2
                    lo, hi = max(mid - half, 0.0), min(mid + half, 1.0)
                    if hi - lo < MIN_SIDE:
                        mid = min(max((lo + hi) / 2, MIN_SIDE / 2), 1 - MIN_SIDE / 2)
                        lo, hi = mid - MIN_SIDE / 2, mid + MIN_SIDE / 2
                    box.append((lo, hi))
                boxes.append([box[0][0], box[1][0], box[0][1], box[1][1]])
            start = i
    return boxes


def test_trace_boxes_reach_the_gligen_unet(tmp_path, toy, models, monkeypatch):
    from diffusers.models.embeddings import GLIGENTextBoundingboxProjection

    received: list[np.ndarray] = []
    original = GLIGENTextBoundingboxProjection.forward

    def spy(self, boxes, masks, *args, **kwargs):
        cond = masks[-1] > 0  # the text-conditioned half of the classifier-free-guidance batch
        received.append(boxes[-1][cond].detach().cpu().numpy().astype(np.float64))
        return original(self, boxes, masks, *args, **kwargs)

    monkeypatch.setattr(GLIGENTextBoundingboxProjection, "forward", spy)
    run(write_config(tmp_path / "g", toy, models, systems="gligen", gligen_extra=", gligen_beta = 1.0"))
    items = sorted(load_toyworld(toy).items, key=lambda it: it.item_id)
    steps = 2
    assert len(received) == steps * len(items)  # the UNet saw boxes at every step of every item
    for k, item in enumerate(items):  # the runner generates in evalset order; ids sort the same here
        want = np.array(expected_boxes(item))
        assert len(want) > 0
        got = received[k * steps]
        assert got.shape == want.shape and np.allclose(got, want, atol=BOX_ABS_TOL), item.item_id


CHILD = "import sys\nfrom trecs_eval.cli import main\nsys.exit(main(sys.argv[1:]))\n"


@pytest.mark.slow  # a subprocess run, or three systems with Inception features
def test_kill_9_mid_generation_resumes_without_regenerating(tmp_path, toy, models):
    big = tmp_path / "toy10"
    write_toyworld(big, n=10, seed=0, image_size=SIZE, shifted=False, progress=False)
    out = tmp_path / "killed"
    config = write_config(out, big, models, systems="sd", batch_size=1, steps=4)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    images = out / "images" / "sd"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "run", str(config), "-q"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_S
    while len(list(images.glob("*.png"))) < 3:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"run ended or stalled before 3 images: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    done = {p.name: p.read_bytes() for p in images.glob("*.png")}
    assert 3 <= len(done) < 10
    resumed = subprocess.run([sys.executable, "-c", CHILD, "run", str(config), "-q"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    generated = [r["item_id"] for r in read_provenance(out, "sd")]
    assert len(generated) == len(set(generated)) == 10  # nothing generated twice
    assert {k: v for k, v in image_bytes(out, "sd").items() if k in done} == done  # finished items untouched
    assert not list(out.rglob("*.tmp"))


@pytest.mark.slow  # a subprocess run, or three systems with Inception features
def test_toy_diffusion_config_runs(tmp_path, models, monkeypatch):
    """configs/toy_diffusion.toml as shipped, with the tiny models where its comments say to build them."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(models["sd"], tmp_path / "runs/tiny_models/tiny-sd")
    shutil.copytree(models["gligen"], tmp_path / "runs/tiny_models/tiny-gligen")
    assert main(["run", str(REPO / "configs" / "toy_diffusion.toml"), "-q", "--uncalibrated-weights"]) == 0
    results = json.loads((tmp_path / "runs/toy_diffusion/results.json").read_text())
    assert {s["name"] for s in results["systems"]} >= {"sd", "gligen"}
    speeds = [s["generation"]["images_per_s"] for s in results["systems"] if s["name"] in ("sd", "gligen")]
    assert len(speeds) == 2 and min(speeds) > 0


def test_xl_pipelines_and_batched_calls(tmp_path, toy):
    """An SDXL-style folder loads through the same system (AutoPipelineForText2Image); with
    ``batched = true`` a batch is one call and each item still gets its own seeded latent."""
    from baselines.diffusers_t2i import DiffusersGenerator
    from tests.diffusion_support import build_tiny_xl_pipeline
    from trecs_eval.generation.protocol import GeneratorContext

    folder = build_tiny_xl_pipeline(tmp_path / "xl")
    items = list(load_toyworld(toy).items)[:2]
    params = {"model": str(folder), "text_policy": "whole_utterances", "steps": 2, "image_size": SIZE}
    single = DiffusersGenerator(params, GeneratorContext())
    batched = DiffusersGenerator({**params, "batched": True}, GeneratorContext())
    alone = [single.generate([it], seed=1)[0].image for it in items]
    together = [g.image for g in batched.generate(items, seed=1)]
    assert type(single.pipe).__name__ == "StableDiffusionXLPipeline"
    assert all(a.shape == (SIZE, SIZE, 3) for a in alone + together)
    assert not np.array_equal(together[0], together[1])  # one latent per item, not one per batch
    for a, b in zip(alone, together, strict=True):  # the same latent: at most last-bit rounding apart
        assert np.abs(a.astype(int) - b.astype(int)).max() <= BATCH_ROUNDING_LEVELS
    assert single.describe(items)["pipeline"] == "StableDiffusionXLPipeline"

"""Small hand-made evaluation items, image folders and caption banks for the harness tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.localized_narratives import write_narratives_jsonl
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint

CAPTIONS = (
    "In this image we can see a dog on the grass.",
    "A cat sitting on a bed near the window.",
    "There is a red car on the road and the sky above.",
    "A person holding an umbrella in the rain.",
    "Two birds flying over the sea at sunset.",
    "A pizza on a plate on the dining table.",
)


def narrative(image_id: str, caption: str, annotator_id: int = 1) -> Narrative:
    """A narrative with one utterance and a three-point diagonal trace."""
    trace = tuple(TracePoint(x=v, y=v, t=v) for v in (0.1, 0.5, 0.9))
    return Narrative(dataset_id="test", image_id=image_id, annotator_id=annotator_id, caption=caption,
                     timed_caption=(TimedUtterance(caption, 0.0, 1.0),), traces=(trace,))


def make_items(n: int, image_dir: Path | None = None, size: int = 32, seed: int = 0) -> list[EvalItem]:
    """``n`` items with ids ``img{i:03d}_1``; with ``image_dir``, each gets a seeded random
    reference PNG of ``size``×``size`` written there."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        nar = narrative(f"img{i:03d}", CAPTIONS[i % len(CAPTIONS)])
        reference = None
        if image_dir is not None:
            image_dir.mkdir(parents=True, exist_ok=True)
            reference = image_dir / f"{nar.image_id}.png"
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(reference)
        items.append(EvalItem(narrative=nar, reference_image=reference))
    return items


def make_bank(train_dir: Path, captions: dict[str, str], size: int = 32) -> dict[str, np.ndarray]:
    """A toyworld-layout caption bank: ``narratives.jsonl`` and ``images/{image_id}.png``, each image
    a flat colour derived from its index. Returns image id -> pixels."""
    (train_dir / "images").mkdir(parents=True, exist_ok=True)
    pixels = {}
    for i, image_id in enumerate(captions):
        image = np.full((size, size, 3), (10 * i) % 256, dtype=np.uint8)
        Image.fromarray(image).save(train_dir / "images" / f"{image_id}.png")
        pixels[image_id] = image
    write_narratives_jsonl(train_dir / "narratives.jsonl",
                           [narrative(image_id, caption) for image_id, caption in captions.items()])
    return pixels


def build_toy_splits(root: Path, n_eval: int, n_train: int, n_real: int, size: int = 64) -> dict[str, Path]:
    """Three disjoint toyworld splits (eval seed 0, train seed 1, real seed 2) under ``root``."""
    from trecs_eval.data.toyworld import write_toyworld

    paths = {}
    for name, n, seed in (("eval", n_eval, 0), ("train", n_train, 1), ("real", n_real, 2)):
        if n:
            paths[name] = root / name
            write_toyworld(paths[name], n=n, seed=seed, image_size=size, shifted=False, progress=False)
    return paths


def tiny_clip_checkpoint(directory: Path, seed: int = 0) -> tuple[str, Path]:
    """(model name, checkpoint path) of the tiny test CLIP, registered in this process."""
    from tests.clip_support import register_tiny_clip
    from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint

    directory.mkdir(parents=True, exist_ok=True)
    model = register_tiny_clip(directory)
    path = directory / f"tiny-clip-seed{seed}.pt"
    if not path.is_file():
        make_calibrated_clip_checkpoint(path, model, seed)
    return model, path


class GatedNoiseGenerator:
    """The noise baseline, calling :meth:`hold` before each batch: a test's gate
    (``tests/interrupt_gates.py``) wraps ``hold`` to stop the run mid-way at a point it controls."""

    name = "gated-noise"
    version = "1"

    def __init__(self, params: dict, context: object) -> None:
        from baselines.noise import NoiseGenerator

        self.inner = NoiseGenerator(params, context)  # type: ignore[arg-type]
        self.capabilities = self.inner.capabilities

    def hold(self) -> None:
        """Nothing, unless a gate is installed."""

    def generate(self, items: list[EvalItem], seed: int) -> list:
        self.hold()
        return self.inner.generate(items, seed)

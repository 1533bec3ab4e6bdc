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

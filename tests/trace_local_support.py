"""A CLIP that reads toyworld, for the trace-local CLIP tests, built without any download.

Calibrated random weights (:func:`trecs_eval.features.clip_weights.make_calibrated_clip_checkpoint`)
give image and text towers whose embeddings spread over the sphere but do not agree with each
other: any text-image score is noise, so no ordering of systems can be shown with them. Here the
two towers keep their calibrated random weights and only the final projections (``visual.proj``,
``text_projection``) are refitted, by ridge regression, so that the crop where a toyworld
utterance's trace points and the utterance's text both land near a seeded random vector of the
utterance's gold class. The fit uses a toyworld split disjoint from the one the tests score
(another seed), and goes through the metric's own crops and texts (:class:`CropSource`), so the
towers see exactly what they see in a run. The result is a plain state dict, loaded as a user's
checkpoint file would be.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trecs_eval.data.evalset import load_toyworld
from trecs_eval.features.clip import ClipEmbedder
from trecs_eval.features.clip_crops import CropSource
from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint
from trecs_eval.metrics.trace_local_clip import narrative_regions

RIDGE = 1e-2  # relative to the mean feature energy: enough to keep the fit stable, small enough to fit


def _fit(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Ridge solution W (width, dim) of features @ W ≈ targets."""
    gram = features.T @ features
    lam = RIDGE * np.trace(gram) / gram.shape[0]
    return np.linalg.solve(gram + lam * np.eye(gram.shape[0]), features.T @ targets)


def _swap_projections(model: torch.nn.Module, visual: torch.Tensor, text: torch.Tensor) -> None:
    model.visual.proj = torch.nn.Parameter(visual.float())
    model.text_projection = torch.nn.Parameter(text.float())


def toyworld_aligned_clip(directory: Path, model: str, train_root: Path, seed: int = 0) -> Path:
    """Write (once) and return a checkpoint of ``model`` aligned on the toyworld split ``train_root``."""
    path = directory / f"{model}-toyworld-aligned-seed{seed}.pt"
    if path.is_file():
        return path
    calibrated = directory / f"{model}-calibrated-seed{seed}.pt"
    make_calibrated_clip_checkpoint(calibrated, model, seed)
    embedder = ClipEmbedder(model=model, pretrained=str(calibrated), device="cpu", cache=None, progress=False)
    clip = embedder.model
    dim = clip.visual.proj.shape[1]
    _swap_projections(clip, torch.eye(clip.visual.proj.shape[0]), torch.eye(clip.text_projection.shape[0]))
    items = load_toyworld(train_root).items
    regions = [narrative_regions(it.narrative, it.gold_tags) for it in items]
    rows = [r for r, reg in enumerate(regions) for u in reg.scored if u.label]
    scored = [u for reg in regions for u in reg.scored if u.label]
    # the embedder normalizes rows; normalize(x @ W) = normalize(x / |x| @ W), so fitting on unit
    # rows of the identity projection is fitting what the refitted projection sees
    source = CropSource(embedder, [str(it.reference_image) for it in items])
    crops = source.crops(rows, [u.box for u in scored])
    texts = source.texts([u.text for u in scored])
    classes = sorted({u.label for u in scored})
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(classes), dim))
    targets = vectors[[classes.index(u.label) for u in scored]]
    visual = _fit(crops.astype(np.float64), targets)
    text = _fit(texts.astype(np.float64), targets)
    _swap_projections(clip, torch.from_numpy(visual), torch.from_numpy(text))
    torch.save(clip.state_dict(), path)
    return path


"""Trace-local CLIP through the measure stage on toyworld: real images score clearly above the same
images with their narratives shuffled between images, and above the real images flipped
left-right (the traces no longer point at the things), for both the score and its contrast.

CLIP is the calibrated tiny test model with its two projections refitted on a disjoint toyworld
split (:mod:`tests.trace_local_support`): random towers alone align text with nothing, so no
ordering could show. "Clearly": the 95 % interval of the paired per-narrative difference, which
resamples images, lies above 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.clip_support import register_tiny_clip
from tests.trace_local_support import toyworld_aligned_clip
from trecs_eval.config import MetricSpec
from trecs_eval.data.evalset import load_toyworld
from trecs_eval.data.toyworld import write_toyworld
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.registry import ExtractorSettings, FeatureExtractors
from trecs_eval.measure import ImageSet, ReferenceFeatures, TextEmbeddings, evaluate_set, plan_metrics
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci
from trecs_eval.metrics.trace_local_clip import CONTRAST, LOCAL, UTTERANCES_COLUMN

N_EVAL, N_FIT, IMAGE_SIZE = 30, 50, 96
METRICS = (LOCAL, CONTRAST)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("trace_local")
    write_toyworld(root / "eval", n=N_EVAL, seed=0, image_size=IMAGE_SIZE, shifted=False, progress=False)
    write_toyworld(root / "fit", n=N_FIT, seed=1, image_size=IMAGE_SIZE, shifted=False, progress=False)
    model = register_tiny_clip(root)
    checkpoint = toyworld_aligned_clip(root, model, root / "fit")
    items = load_toyworld(root / "eval").items
    flipped = root / "flipped"
    flipped.mkdir()
    for it in items:
        image = Image.open(it.reference_image)
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped / f"{it.item_id}.png")
    settings = ExtractorSettings(device="cpu", clip_model=model, clip_pretrained=str(checkpoint),
                                 progress=False)
    extractors = FeatureExtractors(settings, FeatureCache(root / "cache"))
    real = [Path(it.reference_image) for it in items]
    sets = {
        "real": real,
        "shuffled": real[1:] + real[:1],  # every narrative gets another image (a derangement)
        "flipped": [flipped / f"{it.item_id}.png" for it in items],
    }
    plan = plan_metrics([MetricSpec(m) for m in METRICS])
    found = {}
    texts = TextEmbeddings(extractors, [it.narrative for it in items])  # the metrics need the narratives
    for system, paths in sets.items():
        images = ImageSet(system, tuple(it.item_id for it in items), tuple(paths),
                          tuple(it.narrative for it in items), tuple(items))
        found[system] = evaluate_set(plan, extractors, images, ReferenceFeatures(extractors),
                                     texts, seed=0)
    return {"items": items, "found": found, "extractors": extractors}


def _result(world: dict, system: str, name: str):
    return next(r for r in world["found"][system].results if r.name == name)


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("worse", ["shuffled", "flipped"])
def test_real_scores_clearly_above_misplaced_images(world, name, worse):
    real, other = _result(world, "real", name), _result(world, worse, name)
    shared = sorted(real.per_sample.keys() & other.per_sample.keys())
    assert len(shared) >= N_EVAL - 2
    diffs = np.array([real.per_sample[k] - other.per_sample[k] for k in shared])
    images = [k.rsplit("_", 1)[0] for k in shared]
    mean, low, _ = bootstrap_mean_ci(diffs, n_resamples=1000, seed=0, clusters=images)
    assert real.value > other.value and low > 0, (name, worse, real.value, other.value, mean, low)


def test_utterance_scores_reach_samples_and_the_model_is_shared(world):
    column = world["found"]["real"].columns[UTTERANCES_COLUMN]
    assert set(column) == {it.item_id for it in world["items"]}
    first = json.loads(column[world["items"][0].item_id])
    assert len(first["index"]) == len(first["local"]) == len(first["contrast"]) > 0
    real = _result(world, "real", LOCAL)
    assert real.params["by_class"] and real.status == "ok" and real.extractor["weights_sha256"]
    extractors = world["extractors"]
    assert extractors.get("clip_crops").embedder is extractors.get("clip").embedder

"""Trace-local CLIP: boxes, skips, scores and crops against computations done here by hand, and
invariances (batch size, item order, file names)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from tests.clip_support import register_tiny_clip
from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint
from trecs_eval.data.trace_regions import box_pixels, trace_box
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.clip import ClipEmbedder
from trecs_eval.features.clip_crops import CropSource
from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint
from trecs_eval.metrics import trace_local_clip as tlc
from trecs_eval.metrics.types import MetricInputs
from trecs_eval.stages.trace_local import TRACE_LOCAL_CLIP, TRACE_LOCAL_CLIP_CONTRAST

BOX_ABS_TOL = 1e-12  # boxes are a few float64 operations
SCORE_ABS_TOL = 1e-9  # float64 scores of the same embeddings
CLIP_SCORE_ABS_TOL = 1e-3  # float32 forward passes of the same pixels, on the 0..100 scale
BATCH_ABS_TOL = 1e-5  # float32 embeddings from batches of different sizes


def narrative(image_id: str, utterances: list[tuple[str, list[tuple[float, float]]]]) -> Narrative:
    """Utterance k is spoken in [k, k + 1) s; its points are drawn at times inside that span."""
    timed, points = [], []
    for k, (text, pts) in enumerate(utterances):
        timed.append(TimedUtterance(text, float(k), float(k) + 0.9))
        points += [TracePoint(x, y, k + 0.1 + 0.7 * i / max(len(pts), 1)) for i, (x, y) in enumerate(pts)]
    caption = " ".join(t for t, _ in utterances)
    return Narrative("test", image_id, 0, caption, tuple(timed), (tuple(points),))


DOG = [(0.2, 0.2), (0.4, 0.3)]
GRASS = [(0.1, 0.8), (0.9, 0.95)]


def test_trace_box_is_the_grown_clipped_widened_bbox():
    # bbox x 0.2..0.4, y 0.2..0.3; grown 1.4x about (0.3, 0.25): half sides 0.14, 0.07
    box, widened = trace_box(np.array(DOG))
    assert np.allclose(box, (0.16, 0.18, 0.44, 0.32), atol=BOX_ABS_TOL) and not widened
    # one point: both sides widened to 1/16 about it; at a corner, shifted back inside
    box, widened = trace_box(np.array([[0.99, 0.5]]))
    assert widened and np.allclose(box, (1 - 1 / 16, 0.5 - 1 / 32, 1.0, 0.5 + 1 / 32), atol=BOX_ABS_TOL)
    # points outside [0, 1] are clipped first, the grown box clipped to the image
    box, _ = trace_box(np.array([[-0.2, 0.0], [0.5, 1.3]]))
    assert np.allclose(box, (0.0, 0.0, 0.6, 1.0), atol=BOX_ABS_TOL)


def test_box_pixels_takes_every_touched_pixel_and_no_other():
    assert box_pixels((0.16, 0.18, 0.44, 0.32), 100, 50) == (16, 9, 44, 16)  # 0.44 * 100 = 44.000...07
    assert box_pixels((0.155, 0.18, 0.445, 0.33), 100, 50) == (15, 9, 45, 17)
    assert box_pixels((0.999, 0.999, 1.0, 1.0), 10, 10) == (9, 9, 10, 10)  # at least one pixel


def test_regions_skip_and_count_filler_and_pointless_utterances():
    nar = narrative("1", [("In this picture we can see", DOG), ("a black dog", DOG), ("on the grass", [])])
    tags = ("dog",) * 9 + ("grass",) * 3
    found = tlc.narrative_regions(nar, tags)
    assert (found.n_utterances, found.n_without_content, found.n_without_points) == (3, 1, 1)
    assert [u.index for u in found.scored] == [1] and found.scored[0].text == "a black dog"
    assert found.scored[0].label == "dog"
    assert found.texts == ("a black dog", "on the grass")  # the pointless one is still a distractor
    assert np.allclose(found.scored[0].box, trace_box(np.array(DOG))[0], atol=BOX_ABS_TOL)
    assert tlc.narrative_regions(nar).scored[0].label == ""  # no gold tags: no class


def test_scores_match_the_definition_computed_here():
    rng = np.random.default_rng(0)
    crops, texts = rng.standard_normal((4, 8)), rng.standard_normal((6, 8))
    own, candidates = [0, 2, 3, 5], [[0, 1, 2], [0, 1, 2], [3], [4, 5]]

    def s(c: np.ndarray, t: np.ndarray) -> float:
        return 100 * max(float(c @ t / np.linalg.norm(c) / np.linalg.norm(t)), 0.0)

    local = tlc.local_scores(crops, texts[own])
    contrast = tlc.contrast_scores(crops, texts, own, candidates)
    for u in range(4):
        assert local[u] == pytest.approx(s(crops[u], texts[own[u]]), abs=SCORE_ABS_TOL)
        others = [s(crops[u], texts[v]) for v in candidates[u] if v != own[u]]
        if others:
            assert contrast[u] == pytest.approx(s(crops[u], texts[own[u]]) - max(others), abs=SCORE_ABS_TOL)
        else:
            assert math.isnan(contrast[u])  # nothing to contrast with: not scored


def test_contrast_rewards_the_right_thing_here_not_everything_everywhere():
    texts = np.eye(2)
    right_place = tlc.contrast_scores(np.array([[1.0, 0.1], [0.1, 1.0]]), texts, [0, 1], [[0, 1], [0, 1]])
    everywhere = tlc.contrast_scores(np.array([[1.0, 1.0], [1.0, 1.0]]), texts, [0, 1], [[0, 1], [0, 1]])
    assert np.all(right_place > 80) and np.allclose(everywhere, 0.0, atol=SCORE_ABS_TOL)


def test_narrative_mean_then_mean_over_narratives_with_skips_counted():
    scores = tlc.UtteranceScores((0, 0, 2), ("dog", "grass", "dog"), np.array([10.0, 30.0, 50.0]))
    found = tlc.compute_trace_local_clip("trace_local_clip", ["a", "b", "c"], ["i1", "i2", "i1"], scores, {},
                                         n_resamples=50)
    assert found.value == pytest.approx((20.0 + 50.0) / 2) and found.n == 2
    assert found.per_sample == {"a": 20.0, "c": 50.0}
    assert found.params["n_narratives_without_scored_utterance"] == 1 and found.params["n_clusters"] == 1
    assert found.params["by_class"]["dog"]["n"] == 2 and found.params["by_class"]["dog"]["mean"] == 30.0
    assert any("left out" in w for w in found.warnings)
    none = tlc.UtteranceScores((), (), np.zeros(0))
    failed = tlc.compute_trace_local_clip("trace_local_clip", ["a"], ["i1"], none, {}, n_resamples=50)
    assert failed.status == "failed" and math.isnan(failed.value)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> tuple[str, str]:
    directory = tmp_path_factory.mktemp("tiny_clip")
    name = register_tiny_clip(directory)
    path = directory / "tiny.pt"
    make_calibrated_clip_checkpoint(path, name, seed=0)
    return name, str(path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[list[str], list[EvalItem]]:
    directory = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(3)
    paths = []
    for i, (w, h) in enumerate([(100, 50), (64, 96), (80, 80)]):
        paths.append(str(directory / f"img{i}.png"))
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    narratives = [
        narrative("0", [("a brown dog", DOG), ("green grass", GRASS), ("we can see", DOG)]),
        narrative("1", [("a red car", [(0.5, 0.5)]), ("the sky", [(0.0, 0.0), (1.0, 0.3)])]),
        narrative("0", [("a dog", GRASS), ("a single tree", [])]),  # a second narrative of image 0
    ]
    return paths, [EvalItem(n) for n in narratives]


def _inputs(paths, items, embedder, order=None) -> MetricInputs:
    order = list(range(len(items))) if order is None else order
    ids = tuple(f"n{i}" for i in order)
    return MetricInputs(system="s", item_ids=ids, paths=tuple(paths[i] for i in order), seed=0,
                        features={"clip_crops": CropSource(embedder, [paths[i] for i in order])},
                        narratives=tuple(items[i].narrative for i in order),
                        items=tuple(items[i] for i in order))


def _run(metric, inputs):
    return metric.compute(inputs, dict(metric.params))


def test_crop_scores_match_an_independent_clip_computation(tiny_clip, scene):
    paths = [scene[0][0], scene[0][1], scene[0][0]]  # the third narrative is of image 0 too
    embedder = ClipEmbedder(model=tiny_clip[0], pretrained=tiny_clip[1], device="cpu", cache=None,
                            progress=False)
    out = _run(TRACE_LOCAL_CLIP, _inputs(paths, scene[1], embedder))
    per_utterance = {k: json.loads(v) for k, v in out.columns[tlc.UTTERANCES_COLUMN].items()}
    model, tokenizer = embedder.model, embedder.tokenizer
    # n0: utterances 0 and 1 scored ("we can see" has no content word); n1: both; n2: utterance 0
    assert [per_utterance[f"n{i}"]["index"] for i in range(3)] == [[0, 1], [0, 1], [0]]
    hand_boxes = {  # grown boxes by hand, as pixel edges of each image
        ("n0", 0): (16, 9, 44, 16),  # x 0.16..0.44 of 100, y 0.18..0.32 of 50
        ("n0", 1): (0, 38, 100, 49),  # x 0.1..0.9 grown to -0.06..1.06, clipped; y 0.8..0.95 -> 0.77..0.98
        ("n1", 0): (30, 45, 34, 51),  # one point at the centre of 64x96: 1/16 sides (4 x 6 px)
        ("n1", 1): (0, 0, 64, 35),  # y 0..0.3 grown to -0.06..0.36 -> 0..0.36 of 96 = 34.56
        ("n2", 0): (0, 38, 100, 49),
    }
    texts = {("n0", 0): "a brown dog", ("n0", 1): "green grass", ("n1", 0): "a red car", ("n1", 1): "the sky",
             ("n2", 0): "a dog"}
    image_of = {"n0": paths[0], "n1": paths[1], "n2": paths[2]}
    for (item, k), box in hand_boxes.items():
        crop = Image.open(image_of[item]).convert("RGB").crop(box)
        with torch.inference_mode():
            c = model.encode_image(embedder.preprocess(crop)[None]).double()[0]
            t = model.encode_text(tokenizer([texts[(item, k)]])).double()[0]
        expected = 100 * max(float(c @ t / c.norm() / t.norm()), 0.0)
        position = per_utterance[item]["index"].index(k)
        assert per_utterance[item]["local"][position] == pytest.approx(expected, abs=CLIP_SCORE_ABS_TOL)
    assert out.result.params["n_utterances_without_content_word"] == 1
    assert out.result.params["n_utterances_without_points"] == 1
    assert out.result.params["n_clusters"] == 2  # n0 and n2 share image id "0"


def test_batch_size_item_order_and_file_names_do_not_change_scores(tiny_clip, scene, tmp_path):
    paths, items = scene

    def embedder(batch_size: int, cache=None) -> ClipEmbedder:
        return ClipEmbedder(model=tiny_clip[0], pretrained=tiny_clip[1], device="cpu", cache=cache,
                            batch_size=batch_size, progress=False)

    one = _run(TRACE_LOCAL_CLIP_CONTRAST, _inputs(paths, items, embedder(1))).result
    many = _run(TRACE_LOCAL_CLIP_CONTRAST, _inputs(paths, items, embedder(7))).result
    reordered = _run(TRACE_LOCAL_CLIP_CONTRAST, _inputs(paths, items, embedder(7), order=[2, 0, 1])).result
    for other in (many, reordered):
        assert other.per_sample.keys() == one.per_sample.keys()
        for key, value in one.per_sample.items():
            assert other.per_sample[key] == pytest.approx(value, abs=BATCH_ABS_TOL * 100)
        assert other.value == pytest.approx(one.value, abs=BATCH_ABS_TOL * 100)
    # cached crops: a renamed copy of the images hits the cache, no forward pass
    cache = FeatureCache(tmp_path / "cache")
    warm = embedder(7, cache)
    _run(TRACE_LOCAL_CLIP, _inputs(paths, items, warm))
    renamed = []
    for i, p in enumerate(paths):
        renamed.append(str(tmp_path / f"copy{i}.png"))
        Image.open(p).save(renamed[-1])
    again = embedder(7, cache)
    _run(TRACE_LOCAL_CLIP, _inputs(renamed, items, again))
    assert again.forward_batches == {"image": 0, "text": 0}

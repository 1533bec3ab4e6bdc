"""Compose: trace sequences, the placement rule, IoU choice, paint order, fill, the no-trace ablation."""

from __future__ import annotations

import numpy as np
import pytest

import reference_pipeline.compose as compose_module
from reference_pipeline.bank import build_bank
from reference_pipeline.compose import (
    SCALE_MAX,
    TraceSequence,
    compose,
    hull_mask,
    place_on_trace,
    render,
    trace_sequences,
)
from tests.trecs_scene import square_points, write_bank_dir
from trecs_eval.data.coco_stuff import NAME_TO_ID

SIZE = (64, 64)
DOG, CAT, GRASS, SKY = (NAME_TO_ID[n] for n in ("dog", "cat", "grass", "sky-other"))

SCENES = [
    # 0: a thin dog bar on grass (best-ranked in most tests)
    [("grass", (0, 0, 64, 64)), ("dog", (2, 30, 62, 32))],
    # 1: a square dog and a cat on grass
    [("grass", (0, 0, 64, 64)), ("dog", (10, 10, 30, 30)), ("cat", (40, 40, 60, 60))],
    # 2: only sky in the top half; the bottom half is unlabeled
    [("sky-other", (0, 0, 64, 32))],
    # 3: only a thing, no stuff
    [("cat", (0, 0, 16, 16))],
]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = write_bank_dir(tmp_path_factory.mktemp("compose"), SCENES)
    return build_bank(root / "annotations.json", root / "images")


def seq(label: int, box: tuple[float, float, float, float], start: int = 0) -> TraceSequence:
    return TraceSequence(label, start, start + 1, np.array(square_points(*box)))


def test_trace_sequences_are_maximal_runs_with_point_unions():
    tags = ["dog", "dog", "grass", "grass", "grass", "dog", "not-a-label"]
    pts = [np.array([[0.1, 0.1]]), np.array([[0.2, 0.2], [0.1, 0.1]]), np.zeros((0, 2)),
           np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]), np.array([[0.9, 0.9]]), np.array([[0.3, 0.3]])]
    seqs = trace_sequences(tags, pts)
    assert [(s.label, s.start, s.end) for s in seqs] == [(DOG, 0, 2), (GRASS, 2, 5), (DOG, 5, 6)]
    assert seqs[0].points.tolist() == [[0.1, 0.1], [0.2, 0.2]]  # union: the duplicate point once
    assert seqs[1].points.tolist() == [[0.5, 0.5]]


def test_hull_mask_of_a_box_and_of_degenerate_points():
    hull = hull_mask(np.array(square_points(0.25, 0.25, 0.75, 0.75)), SIZE)
    assert hull[16:48, 16:48].all() and hull.sum() == 32 * 32
    line = hull_mask(np.array([[0.25, 0.5], [0.75, 0.5]]), SIZE)  # collinear: the pixels its bbox touches
    assert np.flatnonzero(line.any(axis=1)).tolist() == [32] and line.sum() == 48 - 16 + 1


def test_placement_rule_maps_mask_bbox_onto_trace_bbox(monkeypatch):
    monkeypatch.setattr(compose_module, "TRACE_BOX_GROWTH", 1.0)
    mask = np.zeros(SIZE, dtype=bool)
    mask[10:30, 10:30] = True
    points = np.array(square_points(0.5, 0.25, 0.75, 0.75))  # pixel box x 32..48, y 16..48
    placement = place_on_trace(mask, points, 0, DOG, 1)
    assert placement.scale == (1.6, 0.8)
    placed = render(mask, placement)
    rows, cols = np.flatnonzero(placed.any(axis=1)), np.flatnonzero(placed.any(axis=0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (16, 48, 32, 48)
    assert placed.sum() == 32 * 16


def test_placement_grows_the_trace_box_about_its_centre(monkeypatch):
    monkeypatch.setattr(compose_module, "TRACE_BOX_GROWTH", 1.5)
    mask = np.zeros(SIZE, dtype=bool)
    mask[10:30, 10:30] = True
    # Trace box x 32..48, y 16..48 grows 1.5× about its centre (40, 32): x 28..52, y 8..56.
    placed = render(mask, place_on_trace(mask, np.array(square_points(0.5, 0.25, 0.75, 0.75)), 0, DOG, 1))
    rows, cols = np.flatnonzero(placed.any(axis=1)), np.flatnonzero(placed.any(axis=0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (8, 56, 28, 52)


def test_placement_scale_is_clamped():
    mask = np.zeros(SIZE, dtype=bool)
    mask[30:32, 0:60] = True  # 2 px high: a 32 px trace would need 16×
    placement = place_on_trace(mask, np.array(square_points(0.25, 0.25, 0.75, 0.75)), 0, DOG, 1)
    assert placement.scale[0] == SCALE_MAX


def test_iou_choice_picks_the_better_placed_mask(bank, monkeypatch):
    # The bar (image 0) ranks first, but a square trace fits the square dog of image 1 better.
    chosen = compose(bank, [seq(DOG, (0.5, 0.5, 0.8, 0.8))], ranking=[0, 1], size=SIZE, top_k=2).placements[0]
    assert bank.masks[chosen.mask_index].image_index == 1 and chosen.label == DOG
    monkeypatch.setattr(compose_module, "TRACE_BOX_GROWTH", 1.0)  # the placed square then fills the hull
    comp = compose(bank, [seq(DOG, (0.5, 0.5, 0.8, 0.8))], ranking=[0, 1, 2, 3], size=SIZE, top_k=2)
    chosen = comp.placements[0]
    assert bank.masks[chosen.mask_index].image_index == 1 and chosen.label == DOG
    hull = hull_mask(np.array(square_points(0.5, 0.5, 0.8, 0.8)), SIZE)
    dog = comp.labels == DOG
    assert np.count_nonzero(dog & hull) / np.count_nonzero(dog | hull) > 0.9


def test_canvas_is_fully_covered_in_every_fill_case(bank):
    for ranking, sequences in (([2, 0], []), ([3, 2], []), ([2, 1], [seq(CAT, (0.1, 0.1, 0.3, 0.3))]),
                               ([0, 1], [seq(DOG, (0.0, 0.0, 1.0, 1.0))])):
        comp = compose(bank, sequences, ranking=ranking, size=SIZE)
        assert comp.labels.dtype == np.uint8 and comp.instances.dtype == np.int32
        assert np.all(comp.labels != 0) and np.all(comp.source >= 0)
    # Top-1 holds sky only in its top half: nearest-label fill extends it over the bottom half.
    assert np.all(compose(bank, [], ranking=[2], size=SIZE).labels == SKY)
    # Top-1 holds no stuff: its things are painted at their positions, then extended.
    assert np.all(compose(bank, [], ranking=[3], size=SIZE).labels == CAT)


def test_stuff_is_painted_before_things_whatever_the_narrative_order(bank):
    # "a dog ... on the grass": the grass comes later in the narrative but must not cover the dog.
    sequences = [seq(DOG, (0.4, 0.4, 0.6, 0.6), 0), seq(GRASS, (0.0, 0.0, 1.0, 1.0), 1)]
    comp = compose(bank, sequences, ranking=[1, 0], size=SIZE, top_k=1)
    assert comp.labels[32, 32] == DOG
    assert [p.label for p in comp.placements][:2] == [GRASS, DOG]


def test_things_are_painted_in_narrative_order(bank):
    first = [seq(DOG, (0.3, 0.3, 0.6, 0.6), 0), seq(CAT, (0.4, 0.4, 0.7, 0.7), 1)]
    second = [seq(CAT, (0.4, 0.4, 0.7, 0.7), 0), seq(DOG, (0.3, 0.3, 0.6, 0.6), 1)]
    assert compose(bank, first, ranking=[1], size=SIZE, top_k=1).labels[35, 35] == CAT
    assert compose(bank, second, ranking=[1], size=SIZE, top_k=1).labels[35, 35] == DOG


def test_ignore_traces_keeps_retrieved_positions(bank):
    sequences = [seq(DOG, (0.6, 0.6, 0.9, 0.9))]
    comp = compose(bank, sequences, ranking=[1, 0], size=SIZE, top_k=2, ignore_traces=True)
    original = bank.mask(bank.masks_with_label(1, DOG)[0], SIZE)
    assert np.array_equal(comp.labels == DOG, original)
    traced = compose(bank, sequences, ranking=[1, 0], size=SIZE, top_k=2)
    assert traced.labels[48, 48] == DOG and comp.labels[48, 48] != DOG


def test_candidates_fall_back_beyond_top_k_and_unknown_labels_are_skipped(bank):
    sequences = [seq(CAT, (0.1, 0.1, 0.4, 0.4)), seq(NAME_TO_ID["zebra"], (0.5, 0.5, 0.9, 0.9))]
    comp = compose(bank, sequences, ranking=[0, 2, 1], size=SIZE, top_k=1)
    assert comp.labels[16, 16] == CAT  # cat exists only in image 1, ranked third
    assert comp.skipped == (NAME_TO_ID["zebra"],)


def test_instances_number_the_placed_masks(bank):
    sequences = [seq(DOG, (0.1, 0.1, 0.4, 0.4), 0), seq(CAT, (0.6, 0.6, 0.9, 0.9), 1)]
    comp = compose(bank, sequences, ranking=[1], size=SIZE, top_k=1)
    assert comp.instances[16, 16] == 1 and comp.instances[48, 48] == 2
    assert set(np.unique(comp.instances)) <= {0, 1, 2}


def test_masks_that_vanish_at_the_canvas_size_are_not_used(tmp_path):
    # A 1-pixel cat and a 1-pixel sky patch vanish when a 64 px image is shrunk to an 8 px canvas.
    root = write_bank_dir(tmp_path, [[("sky-other", (0, 0, 1, 1)), ("cat", (40, 40, 41, 41))],
                                     [("grass", (0, 0, 64, 64))]])
    bank = build_bank(root / "annotations.json", root / "images")
    comp = compose(bank, [seq(CAT, (0.1, 0.1, 0.5, 0.5))], ranking=[0, 1], size=(8, 8), top_k=1)
    assert comp.skipped == (CAT,) and np.all(comp.labels == GRASS)  # the next-ranked image fills


def _walk_candidates(bank, label, ranking, top_k, size):
    """The definition: masks of ``label`` in the top-k images, else in the first image down the
    ranking that has a usable one (the plain walk the indexed lookup replaces)."""
    def usable(i):
        return [m for m in bank.masks_with_label(int(i), label) if bank.mask_bbox(m, size) is not None]

    found = [m for i in ranking[:top_k] for m in usable(i)]
    if found:
        return found
    return next((usable(i) for i in ranking[top_k:] if usable(i)), [])


def test_indexed_fallback_equals_walking_the_ranking(bank):
    from reference_pipeline.compose import candidates

    rng = np.random.default_rng(0)
    labels = sorted({m.label for m in bank.masks})
    for _ in range(30):
        ranking = rng.permutation(len(bank))[: int(rng.integers(1, len(bank) + 1))]  # full or partial
        for label in labels:
            for top_k in (1, 2):
                assert candidates(bank, label, ranking, top_k, (32, 32)) == _walk_candidates(
                    bank, label, ranking, top_k, (32, 32))

"""Synthesizers: palette colours, collage provenance and seams, SPADE checkpoints via the real loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference_pipeline.bank import build_bank
from reference_pipeline.compose import TraceSequence, compose
from reference_pipeline.synthesize.collage import SEAM_RADIUS_PX, CollageSynthesizer
from reference_pipeline.synthesize.palette import synthesize_palette
from reference_pipeline.synthesize.spade import (
    SEMANTIC_CHANNELS,
    SpadeConfig,
    SPADEGenerator,
    SpadeSynthesizer,
    save_checkpoint,
    semantic_input,
)
from tests.trecs_scene import scene_colour, square_points, write_bank_dir
from trecs_eval.data.coco_stuff import NAME_TO_ID, PALETTE
from trecs_eval.errors import InputError, MissingWeightsError

DOG, GRASS = NAME_TO_ID["dog"], NAME_TO_ID["grass"]
SCENES = [[("grass", (0, 0, 64, 64)), ("dog", (10, 10, 30, 30))]]
# 2×2 -> 64×64 (norm needs >1 px)
TINY_SPADE = SpadeConfig(ngf=2, z_dim=8, nhidden=4, crop_size=64, use_vae=True)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = write_bank_dir(tmp_path_factory.mktemp("synth"), SCENES)
    return build_bank(root / "annotations.json", root / "images")


def dog_on_trace(bank, size=(64, 64)):
    dog = TraceSequence(DOG, 0, 1, np.array(square_points(0.7, 0.7, 0.95, 0.95)))
    return compose(bank, [dog], ranking=[0], size=size, top_k=1)


def test_palette_gives_each_label_its_colour():
    labels = np.array([[DOG, GRASS], [0, 182]], dtype=np.uint8)
    image = synthesize_palette(labels)
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    for (r, c), label in np.ndenumerate(labels):
        assert image[r, c].tolist() == PALETTE[label].tolist()


def test_collage_copies_moved_source_pixels_and_blends_only_seams(bank):
    comp = dog_on_trace(bank)
    image = CollageSynthesizer(bank)(comp)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    # The moved dog keeps the dog's colour deep inside its new place, the grass elsewhere.
    assert image[53, 53].tolist() == scene_colour(0, DOG).tolist()
    assert image[60, 5].tolist() == scene_colour(0, GRASS).tolist()
    # Where the dog used to be, the canvas is grass (nearest-label fill): only grass pixels are copied.
    assert comp.labels[20, 20] == GRASS and image[20, 20].tolist() == scene_colour(0, GRASS).tolist()
    # Seams: every pixel that differs from both pure colours lies within the seam band of the dog.
    pure = np.all(image == scene_colour(0, DOG), axis=2) | np.all(image == scene_colour(0, GRASS), axis=2)
    rows, cols = np.nonzero(~pure)
    dog = comp.labels == DOG
    boundary_dist = np.array([np.abs(dog[max(r - 3, 0):r + 4, max(c - 3, 0):c + 4].astype(int)
                                     - dog[r, c]).max() for r, c in zip(rows, cols, strict=True)])
    assert rows.size > 0 and np.all(boundary_dist == 1)
    assert SEAM_RADIUS_PX <= 3


def test_collage_is_deterministic_and_handles_another_canvas_size(bank):
    synth = CollageSynthesizer(bank)
    a = synth(dog_on_trace(bank))
    b = CollageSynthesizer(bank)(dog_on_trace(bank))
    assert a.tobytes() == b.tobytes()
    big = synth(dog_on_trace(bank, (128, 128)))
    assert big.shape == (128, 128, 3) and big[106, 106].tolist() == scene_colour(0, DOG).tolist()


def test_semantic_input_one_hot_and_instance_edges():
    labels = np.full((4, 4), GRASS, dtype=np.uint8)
    labels[:, 2:] = DOG
    instances = np.zeros((4, 4), dtype=np.int32)
    instances[:, 2:] = 1
    seg = semantic_input(labels, instances)
    assert seg.shape == (1, SEMANTIC_CHANNELS, 4, 4)
    assert torch.equal(seg[0, GRASS - 1, :, :2], torch.ones(4, 2)) and seg[0, DOG - 1, :, 2:].all()
    assert seg[0, :-1].sum(dim=0).eq(1).all()  # exactly one label channel per labelled pixel
    assert seg[0, -1, :, 1:3].eq(1).all() and seg[0, -1, :, [0, 3]].eq(0).all()  # edges beside the border


@pytest.fixture()
def one_thread():
    # Tiny convolutions gain nothing from threads and lose a lot on a shared 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def spade_checkpoint(tmp_path_factory):
    torch.manual_seed(0)  # the random-init weights of the test checkpoint
    path = tmp_path_factory.mktemp("spade") / "spade.pt"
    save_checkpoint(SPADEGenerator(TINY_SPADE), path)
    return path


def test_spade_loads_a_checkpoint_and_is_seeded(spade_checkpoint, one_thread):
    synth = SpadeSynthesizer(spade_checkpoint)
    assert synth.model.config == TINY_SPADE
    labels = np.full((32, 32), GRASS, dtype=np.uint8)
    labels[5:15, 5:15] = DOG
    instances = (labels == DOG).astype(np.int32)
    a, b, c = synth(labels, instances, 1), synth(labels, instances, 1), synth(labels, instances, 2)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    # The canvas drives the output: another layout, another image (same seed).
    plain = synth(np.full((32, 32), GRASS, dtype=np.uint8), np.zeros((32, 32), np.int32), 1)
    assert plain.tobytes() != a.tobytes()
    assert synth(labels[::2, ::2], instances[::2, ::2], 1).shape == (16, 16, 3)  # resized to the canvas


def test_spade_checkpoint_errors(tmp_path, spade_checkpoint):
    with pytest.raises(MissingWeightsError, match="not found"):
        SpadeSynthesizer(tmp_path / "nope.pt")
    wrong = tmp_path / "wrong.pt"
    state = torch.load(spade_checkpoint, weights_only=True)
    state["config"]["ngf"] = 3
    torch.save(state, wrong)
    with pytest.raises(InputError, match="does not fit") as info:
        SpadeSynthesizer(wrong)
    assert info.value.field == "state_dict"
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": SpadeConfig()}, unsafe)  # an arbitrary pickled object: refused by weights_only
    with pytest.raises(InputError, match="weights-only"):
        SpadeSynthesizer(unsafe)

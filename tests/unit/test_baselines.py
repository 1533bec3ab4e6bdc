"""Built-in baselines: noise, mean-color, real, folder, retrieval (TF-IDF vs a hand computation),
the diffusers error paths, and the registry entries."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
from PIL import Image

import baselines
from baselines.diffusers_t2i import DiffusersGenerator
from baselines.folder import FolderGenerator
from baselines.noise import MeanColorGenerator, NoiseGenerator
from baselines.real import RealGenerator
from baselines.retrieval import RetrievalGenerator, TfidfIndex
from tests.harness_fixtures import make_bank, make_items
from trecs_eval.errors import ConfigError, InputError, MissingWeightsError, UnknownNameError
from trecs_eval.generation.protocol import GENERATORS, Generator, GeneratorContext

CTX = GeneratorContext(image_size=32)
# 32x32x3 = 3072 uniform draws on {0..255}: the mean has std 73.9/sqrt(3072) = 1.33; 5 sigma
NOISE_MEAN_TOL = 5 * math.sqrt((256**2 - 1) / 12) / math.sqrt(32 * 32 * 3)
TFIDF_ABS_TOL = 1e-12


def test_noise_is_seeded_per_item_and_independent_of_batching():
    gen = NoiseGenerator({}, CTX)
    items = make_items(3)
    together = gen.generate(items, seed=7)
    alone = gen.generate(items[2:], seed=7)
    assert np.array_equal(together[2].image, alone[0].image)
    assert not np.array_equal(together[0].image, together[1].image)
    assert not np.array_equal(together[0].image, gen.generate(items[:1], seed=8)[0].image)
    image = together[0].image
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert abs(image.mean() - 127.5) < NOISE_MEAN_TOL


def test_mean_color_from_param_and_from_training_images(tmp_path):
    items = make_items(2)
    flat = MeanColorGenerator({"color": [1, 2, 3]}, CTX).generate(items, 0)
    assert (flat[1].image == np.array([1, 2, 3], dtype=np.uint8)).all()
    pixels = make_bank(tmp_path / "train", {"a": "x", "b": "y", "c": "z"})
    expected = np.rint(np.mean([p.reshape(-1, 3).mean(axis=0) for p in pixels.values()], axis=0))
    gen = MeanColorGenerator({}, GeneratorContext(image_size=16, train_dir=tmp_path / "train"))
    out = gen.generate(items[:1], 0)[0].image
    assert out.shape == (16, 16, 3)
    assert (out == expected.astype(np.uint8)).all()
    with pytest.raises(ConfigError, match=r"\[r, g, b\]"):
        MeanColorGenerator({"color": [1, 2, 300]}, CTX)
    with pytest.raises(ConfigError, match="no color given"):
        MeanColorGenerator({}, CTX)


def test_real_returns_the_reference_pixels(tmp_path):
    items = make_items(3, tmp_path / "ref", size=24)
    out = RealGenerator({}, CTX).generate(items, 0)
    for item, gen in zip(items, out, strict=True):
        assert np.array_equal(gen.image, np.asarray(Image.open(item.reference_image).convert("RGB")))
    resized = RealGenerator({"resize": True}, CTX).generate(items[:1], 0)[0].image
    assert resized.shape == (32, 32, 3)
    no_reference = make_items(2)
    check = RealGenerator({}, CTX).check_items(no_reference)
    assert check.missing == ("img000_1", "img001_1")


def test_folder_inventory_lists_every_problem(tmp_path):
    folder = tmp_path / "released"
    folder.mkdir()
    items = make_items(5)
    good = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    Image.fromarray(good).save(folder / "img000_1.png")
    Image.fromarray(good).save(folder / "img001_1.png")
    Image.fromarray(good[:16, :16]).save(folder / "img002_1.png")  # wrong size
    (folder / "img003_1.png").write_bytes(b"\x89PNG not really")  # unreadable; img004 absent
    Image.fromarray(good).save(folder / "unrelated_9.png")  # extra
    gen = FolderGenerator({"path": str(folder)}, CTX)
    check = gen.check_items(items)
    assert set(check.missing) == {"img002_1", "img003_1", "img004_1"}
    notes = "\n".join(check.notes)
    for expected in ("1 missing file(s)", "img004_1", "1 unreadable file(s): img003_1",
                     "not 32x32: img002_1 (16x16)", "1 extra file(s)", "unrelated_9.png"):
        assert expected in notes
    assert np.array_equal(gen.generate(items[:1], 0)[0].image, good)
    with pytest.raises(InputError, match="expected 32x32"):
        gen.generate(items[2:3], 0)
    resizing = FolderGenerator({"path": str(folder), "resize": True}, CTX)
    assert "img002_1" not in resizing.check_items(items).missing
    assert resizing.generate(items[2:3], 0)[0].image.shape == (32, 32, 3)


def test_folder_parameter_errors(tmp_path):
    with pytest.raises(ConfigError, match="required parameter"):
        FolderGenerator({}, CTX)
    with pytest.raises(ConfigError, match="not a directory"):
        FolderGenerator({"path": str(tmp_path / "absent")}, CTX)
    with pytest.raises(ConfigError, match="unknown parameter 'pth' \\(did you mean 'path'\\?\\)"):
        FolderGenerator({"pth": str(tmp_path)}, CTX)
    with pytest.raises(ConfigError, match="'resize' must be bool"):
        FolderGenerator({"path": str(tmp_path), "resize": 1}, CTX)


def test_tfidf_matches_a_hand_computation():
    docs = [["dog", "grass", "dog"], ["cat", "grass"], ["car"]]
    index = TfidfIndex(docs)
    n = 3
    doc_freq = {"dog": 1, "grass": 2, "cat": 1, "car": 1}
    idf = {t: math.log((1 + n) / (1 + df)) + 1 for t, df in doc_freq.items()}
    raw = {"dog": 2 * idf["dog"], "grass": idf["grass"]}
    norm = math.sqrt(sum(v * v for v in raw.values()))
    query = {"grass": idf["grass"]}  # "dragon" is not in the bank: ignored
    expected_sim = (raw["grass"] / norm) * 1.0  # the query vector is grass alone, normalised to 1
    sims = index.query([["grass", "dragon"]])[0]
    assert sims[0] == pytest.approx(expected_sim, abs=TFIDF_ABS_TOL)
    cat_grass = math.sqrt(idf["cat"] ** 2 + idf["grass"] ** 2)
    assert sims[1] == pytest.approx(query["grass"] / cat_grass, abs=TFIDF_ABS_TOL)
    assert sims[2] == 0.0


def test_retrieval_returns_the_nearest_bank_image_never_itself(tmp_path):
    pixels = make_bank(tmp_path / "train", {
        "dogs": "A dog on the grass with another dog.",
        "cats": "A cat sitting on a bed near the window.",
        "img002": "There is a red car on the road and the sky above.",  # same image id as item 2
        "cars": "A car parked on a road.",
    })
    gen = RetrievalGenerator({}, GeneratorContext(image_size=32, train_dir=tmp_path / "train"))
    items = make_items(3)  # dog/grass, cat/bed/window, red car/road/sky
    assert [gen.bank[i].image_id for i in gen.nearest(items)] == ["dogs", "cats", "cars"]
    assert np.array_equal(gen.generate(items[:1], 0)[0].image, pixels["dogs"])
    allow_self = RetrievalGenerator({"exclude_same_image": False},
                                    GeneratorContext(image_size=32, train_dir=tmp_path / "train"))
    assert allow_self.bank[allow_self.nearest(items[2:])[0]].image_id == "img002"
    with pytest.raises(ConfigError, match="caption bank"):
        RetrievalGenerator({}, CTX)


def test_diffusers_errors_are_clear(monkeypatch):
    with pytest.raises(ConfigError, match=r"required parameter.*text_policy"):
        DiffusersGenerator({"model": "x"}, CTX)
    with pytest.raises(ConfigError, match="did you mean 'truncate'"):
        DiffusersGenerator({"model": "x", "text_policy": "truncat"}, CTX)
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"trecs-eval\[diffusers\]"):
        DiffusersGenerator({"model": "x", "text_policy": "truncate"}, CTX)

    def no_weights(*args, **kwargs):
        raise OSError("model-x is not in the local cache")

    fake = types.SimpleNamespace(AutoPipelineForText2Image=types.SimpleNamespace(from_pretrained=no_weights))
    monkeypatch.setitem(sys.modules, "diffusers", fake)
    with pytest.raises(MissingWeightsError, match=r"cannot load model 'model-x'.*not in the local cache"):
        DiffusersGenerator({"model": "model-x", "text_policy": "truncate"}, CTX)


def test_every_builtin_is_registered_and_named_as_registered():
    assert set(baselines.BUILTIN_GENERATORS) <= set(GENERATORS.names())
    for name in baselines.BUILTIN_GENERATORS:
        cls = GENERATORS.get(name)
        assert cls.name == name
        assert isinstance(cls.version, str) and cls.version
    assert isinstance(NoiseGenerator({}, CTX), Generator)
    with pytest.raises(UnknownNameError, match="did you mean 'noise'"):
        GENERATORS.get("nosie")

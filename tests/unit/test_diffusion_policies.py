"""The diffusion systems' policies without running a model: long-narrative prompts (with a real
CLIPTokenizer built from files), GLIGEN's phrases and boxes (grown hull, tiny and many boxes),
the model-folder fingerprint, dtype and scheduler choice, parameter errors."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from baselines._diffusion import (
    CLIP_MAX_TOKENS,
    fit_words,
    load_pipeline,
    prompt_for,
    resolve_dtype,
)
from baselines.gligen import (
    GLIGEN_MAX_BOXES,
    MIN_BOX_SIDE,
    GligenGenerator,
    grounding,
    keep_largest,
    label_phrase,
)
from tests.diffusion_support import tiny_text_parts
from tests.harness_fixtures import narrative
from trecs_eval.data.coco_stuff import NAME_TO_ID
from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.narratives import Narrative, TimedUtterance
from trecs_eval.data.trace_regions import trace_box
from trecs_eval.errors import ConfigError
from trecs_eval.features.identity import folder_sha256
from trecs_eval.generation.protocol import GeneratorContext

BOX_ABS_TOL = 1e-12


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_text_parts(tmp_path_factory.mktemp("tok"))[0]


def item_with(utterances: list[str]) -> EvalItem:
    base = narrative("img", " ".join(utterances))
    timed = tuple(TimedUtterance(u, float(i), float(i + 1)) for i, u in enumerate(utterances))
    nar = Narrative(base.dataset_id, base.image_id, base.annotator_id, base.caption, timed, base.traces)
    return EvalItem(narrative=nar)


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text).input_ids)


def test_prompt_policies(tokenizer):
    short = item_with(["a dog on the grass."])
    assert prompt_for(tokenizer, short, "truncate") == ("a dog on the grass.", False)
    assert prompt_for(tokenizer, short, "whole_utterances") == ("a dog on the grass.", False)
    units = [f"there is a {w} near the {v}." for w, v in
             [("dog", "tree"), ("cat", "house"), ("car", "road"), ("person", "sea"), ("cloud", "sun")] * 3]
    long = item_with(units)
    assert n_tokens(tokenizer, long.narrative.caption) > CLIP_MAX_TOKENS
    assert prompt_for(tokenizer, long, "truncate") == (long.narrative.caption, True)
    prompt, truncated = prompt_for(tokenizer, long, "whole_utterances")
    k = len(prompt.split(". ")) if prompt else 0
    assert truncated and prompt == " ".join(units[:k]) and 0 < k < len(units)
    assert n_tokens(tokenizer, prompt) <= CLIP_MAX_TOKENS < n_tokens(tokenizer, " ".join(units[:k + 1]))
    phrase = fit_words(tokenizer, long.narrative.caption)  # GLIGEN phrases are not cut by the pipeline
    assert n_tokens(tokenizer, phrase) <= CLIP_MAX_TOKENS < n_tokens(tokenizer, " ".join(
        long.narrative.caption.split()[:len(phrase.split()) + 1]))
    # one utterance longer than the limit: the cut caption, never an empty prompt
    monster = item_with(["zq" * 100 + "."])
    assert prompt_for(tokenizer, monster, "whole_utterances") == (monster.narrative.caption, True)


def test_span_box_grows_the_hull_and_widens_tiny_boxes():
    points = np.array([[0.2, 0.3], [0.4, 0.5], [0.3, 0.35]])
    box, widened = trace_box(points, MIN_BOX_SIDE)
    # bbox 0.2..0.4 x 0.3..0.5, centre (0.3, 0.4), half-sides 0.1 * 1.4
    assert not widened and np.allclose(box, (0.16, 0.26, 0.44, 0.54), atol=BOX_ABS_TOL)
    big, _ = trace_box(np.array([[0.0, 0.3], [0.9, 1.0]]), MIN_BOX_SIDE)
    assert np.allclose(big, (0.0, 0.16, 1.0, 1.0), atol=BOX_ABS_TOL)  # grown past the image, clipped
    dot, widened = trace_box(np.array([[0.5, 0.5]]), MIN_BOX_SIDE)
    lo, hi = 0.5 - 1 / 32, 0.5 + 1 / 32
    assert widened and np.allclose(dot, (lo, lo, hi, hi), atol=BOX_ABS_TOL)
    corner, _ = trace_box(np.array([[-0.02, 0.999]]), MIN_BOX_SIDE)  # LN traces leave [0, 1] a little
    assert np.allclose(corner, (0.0, 1 - 1 / 16, 1 / 16, 1.0), atol=BOX_ABS_TOL)  # shifted inside


def test_many_boxes_keep_the_largest_in_narrative_order():
    sides = [0.01 * (i % 7 + 1) for i in range(GLIGEN_MAX_BOXES + 5)]
    boxes = [(0.0, 0.0, s, s) for s in sides]
    kept = keep_largest(boxes, GLIGEN_MAX_BOXES)
    assert len(kept) == GLIGEN_MAX_BOXES and kept == sorted(kept)
    dropped = set(range(len(boxes))) - set(kept)
    assert max(sides[i] for i in dropped) <= min(sides[i] for i in kept)
    assert keep_largest(boxes[:3], GLIGEN_MAX_BOXES) == [0, 1, 2]


def test_grounding_phrases_and_spans_without_points():
    words = ["a", "dog", "dog", "on", "the", "grass", "sky"]
    tags = ["", "dog", "dog", "", "", "grass", "sky-other"]
    pts = [np.zeros((0, 2)), np.array([[0.1, 0.1]]), np.array([[0.3, 0.2]]), np.zeros((0, 2)),
           np.zeros((0, 2)), np.array([[0.5, 0.8], [0.9, 0.9]]), np.zeros((0, 2))]
    g = grounding(words, tags, pts, "words", GLIGEN_MAX_BOXES, MIN_BOX_SIDE)
    assert g.phrases == ("dog dog", "grass") and g.n_spans == 3 and g.n_without_points == 1
    assert len(g.boxes) == 2 and g.n_dropped == 0
    assert grounding(words, tags, pts, "label", 1, MIN_BOX_SIDE).phrases == ("grass",)  # the larger box
    assert label_phrase(NAME_TO_ID["sky-other"]) == "sky"
    assert label_phrase(NAME_TO_ID["wall-concrete"]) == "wall concrete"


def test_folder_fingerprint(tmp_path):
    a = tmp_path / "a"
    (a / "unet").mkdir(parents=True)
    (a / "model_index.json").write_text("{}")
    (a / "unet" / "w.safetensors").write_bytes(b"\x00" * 10)
    digest = folder_sha256(a)
    (a / ".cache").mkdir()
    (a / ".cache" / "lock").write_text("x")  # hidden: not part of the model
    assert folder_sha256(a) == digest
    a.rename(tmp_path / "renamed")
    assert folder_sha256(tmp_path / "renamed") == digest
    (tmp_path / "renamed" / "unet" / "w.safetensors").write_bytes(b"\x00" * 9 + b"\x01")
    assert folder_sha256(tmp_path / "renamed") != digest


def test_dtype_and_scheduler_choice():
    assert resolve_dtype("s", "auto", "cpu") == "float32" and resolve_dtype("s", "auto", "cuda") == "float16"
    with pytest.raises(ConfigError, match="float16' needs a CUDA device"):
        resolve_dtype("s", "float16", "cpu")
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    pipe = types.SimpleNamespace(scheduler=DDIMScheduler(), to=lambda device: None,
                                 set_progress_bar_config=lambda **kw: None)
    loader = types.SimpleNamespace(from_pretrained=lambda *a, **kw: pipe)
    loaded = load_pipeline("s", loader, "m", "float32", False, "cpu", "EulerDiscreteScheduler")
    assert isinstance(loaded.scheduler, EulerDiscreteScheduler)
    with pytest.raises(ConfigError, match="did you mean 'EulerDiscreteScheduler'"):
        load_pipeline("s", loader, "m", "float32", False, "cpu", "EulerDiscreteSchedulr")


def test_gligen_parameter_errors(monkeypatch):
    pipe = types.SimpleNamespace(to=lambda device: None, set_progress_bar_config=lambda **kw: None)
    fake = types.SimpleNamespace(StableDiffusionGLIGENPipeline=types.SimpleNamespace(
        from_pretrained=lambda *a, **kw: pipe))
    monkeypatch.setitem(sys.modules, "diffusers", fake)
    ctx = GeneratorContext()
    base = {"model": "m", "text_policy": "truncate", "tags": "oracle"}
    with pytest.raises(ConfigError, match=r"max_boxes must be in 1\.\.30"):
        GligenGenerator({**base, "max_boxes": 31}, ctx)
    with pytest.raises(ConfigError, match="did you mean 'label'"):
        GligenGenerator({**base, "phrase": "labels"}, ctx)
    with pytest.raises(ConfigError, match="gligen generator needs a train folder"):
        GligenGenerator({**base, "tags": "predicted"}, ctx)
    assert isinstance(GligenGenerator(base, ctx), GligenGenerator)


def test_tokenizer_files_are_written_here(tmp_path):
    tiny_text_parts(tmp_path)
    assert Path(tmp_path / "_tok" / "vocab.json").is_file()


def test_the_commented_diffusion_systems_of_ln_coco_val_are_valid():
    """configs/ln_coco_val.toml ships `sd` and `gligen` commented out (they need local model
    folders); uncommented, they name registered systems with parameters those systems accept."""
    import tomllib

    import baselines  # noqa: F401  (registers the built-ins)
    from baselines._common import read_params
    from baselines.diffusers_t2i import DEFAULTS
    from baselines.gligen import GLIGEN_DEFAULTS
    from trecs_eval.generation.protocol import GENERATORS

    text = (Path(__file__).resolve().parents[2] / "configs" / "ln_coco_val.toml").read_text(encoding="utf-8")
    commented = "\n".join(line[2:] for line in text.splitlines() if line.startswith("# ") and (
        line.startswith(("# [[systems]]", "# name", "# generator", "# params"))))
    systems = {s["name"]: s for s in tomllib.loads(commented)["systems"]}
    assert set(systems) == {"sd", "gligen"}
    for spec, defaults in ((systems["sd"], DEFAULTS), (systems["gligen"], GLIGEN_DEFAULTS)):
        assert spec["generator"] in GENERATORS
        read_params(spec["generator"], spec["params"], defaults, required=("model", "text_policy"))


def test_gligen_predicted_tags_come_from_the_trained_tagger(monkeypatch, tmp_path):
    """tags = "predicted" (the default): the project's tagger, trained on the train folder's
    TReCS label files, names the spans; its boxes match those of its own tags."""
    from reference_pipeline.generator import make_tagger
    from trecs_eval.data.evalset import load_toyworld
    from trecs_eval.data.toyworld import write_toyworld
    from trecs_eval.metrics.label_canvas import points_for_words

    pipe = types.SimpleNamespace(to=lambda device: None, set_progress_bar_config=lambda **kw: None)
    fake = types.SimpleNamespace(StableDiffusionGLIGENPipeline=types.SimpleNamespace(
        from_pretrained=lambda *a, **kw: pipe))
    monkeypatch.setitem(sys.modules, "diffusers", fake)
    for name, seed in (("train", 1), ("eval", 0)):
        write_toyworld(tmp_path / name, n=20, seed=seed, image_size=32, shifted=False, progress=False)
    ctx = GeneratorContext(train_dir=tmp_path / "train", work_dir=tmp_path / "work")
    gen = GligenGenerator({"model": "m", "text_policy": "truncate"}, ctx)
    tagger = make_tagger("fill", 0, None, ctx, "test")  # the cached tagger the generator trained
    items = list(load_toyworld(tmp_path / "eval").items)
    n_boxes = 0
    for item in items:
        words = item.narrative.words
        want = grounding(words, tagger.tag(words), points_for_words(item.narrative, words), "words",
                         GLIGEN_MAX_BOXES, MIN_BOX_SIDE)
        assert gen.grounding(item) == want
        n_boxes += len(want.boxes)
    assert n_boxes >= len(items)  # the predicted tags do name objects with traces

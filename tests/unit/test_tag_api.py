"""train_tagger / save_tagger / load_tagger: one entry point for every kind; bad checkpoints fail loudly."""

from __future__ import annotations

import pytest
import torch

from reference_pipeline.tag import TAGGER_KINDS, Tagger, load_tagger, save_tagger, train_tagger
from reference_pipeline.tag.neural import NeuralConfig
from trecs_eval.errors import InputError, UnknownNameError

WORDS = [["a", "dog", "on", "grass"], ["sky", "above", "a", "tree"], ["grass", "and", "sky"]] * 3
TAGS = [["dog", "dog", "grass", "grass"], ["sky-other", "sky-other", "tree", "tree"],
        ["grass", "sky-other", "sky-other"]] * 3
WORDS, TAGS = [*WORDS, []], [*TAGS, []]  # an empty narrative must not break any kind
TINY_NEURAL = NeuralConfig(embedding_dim=8, hidden_dim=8, epochs=2, batch_size=4, threads=1)
PROBES = [["a", "dog", "on", "grass"], ["unseen", "sky", "tree"], []]


@pytest.mark.parametrize("kind", TAGGER_KINDS)
def test_every_kind_round_trips_through_weights_only_checkpoint(kind: str, tmp_path) -> None:
    tagger = train_tagger(kind, WORDS, TAGS, seed=3, neural_config=TINY_NEURAL, transition_power=2.0)
    assert isinstance(tagger, Tagger) and tagger.name == kind
    path = save_tagger(tagger, tmp_path / "sub" / "model.pt")
    torch.load(path, weights_only=True)  # the format needs no pickled classes
    loaded = load_tagger(path)
    assert type(loaded) is type(tagger)
    for words in PROBES:
        assert loaded.tag(words) == tagger.tag(words)
        assert loaded.tag(words, allowed_labels={"grass", "tree"}) == tagger.tag(words, {"grass", "tree"})
        assert set(tagger.tag(words, allowed_labels={"grass", "tree"})) <= {"grass", "tree"}
        assert len(tagger.tag(words)) == len(words)


def test_unknown_kind_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'hmm'"):
        train_tagger("hm", WORDS, TAGS)  # type: ignore[arg-type]


def test_bad_training_data_names_the_narrative() -> None:
    with pytest.raises(InputError, match=r"^2: field 'tags': 3 words but 2 tags"):
        train_tagger("majority", [["a"], ["b", "c", "d"]], [["x"], ["y", "z"]])
    with pytest.raises(InputError, match="label bags"):
        train_tagger("hmm", WORDS, TAGS, label_bags=[{"dog"}])


def test_bad_checkpoints_are_input_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_tagger(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"garbage\.pt: not a readable tagger checkpoint"):
        load_tagger(garbage)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(InputError, match="field 'format'"):
        load_tagger(other)
    broken = tmp_path / "broken.pt"
    torch.save({"format": "trecs-eval-tagger", "version": 1, "kind": "hmm", "state": {}}, broken)
    with pytest.raises(InputError, match="incomplete or malformed"):
        load_tagger(broken)

"""Baseline taggers: majority, per-word majority and fill, on hand-made corpora."""

from __future__ import annotations

import pytest

from reference_pipeline.tag.baselines import count_word_labels, train_baseline
from trecs_eval.errors import TrecsEvalError

WORDS = [["a", "dog", "on", "the", "grass"], ["the", "dog", "runs"], ["the", "sky"], ["grass"]]
TAGS = [["dog", "dog", "grass", "grass", "grass"], ["dog", "dog", "dog"], ["sky-other", "sky-other"],
        ["grass"]]
# label counts: dog 5, grass 4, sky-other 2; "the": grass 1, dog 1, sky-other 1


def test_majority_tags_everything_with_most_frequent_label() -> None:
    tagger = train_baseline("majority", WORDS, TAGS)
    assert tagger.tag(["anything", "at", "all"]) == ["dog"] * 3
    assert tagger.tag(["x"], allowed_labels={"grass", "sky-other"}) == ["grass"]


def test_word_majority_uses_each_words_distribution() -> None:
    tagger = train_baseline("word-majority", WORDS, TAGS)
    assert count_word_labels(WORDS, TAGS)["the"] == {"grass": 1, "dog": 1, "sky-other": 1}
    # "the" ties three ways: alphabetical first; unseen word -> majority
    assert tagger.tag(["grass", "the", "zebra", "sky"]) == ["grass", "dog", "dog", "sky-other"]
    assert tagger.tag(["the"], allowed_labels={"sky-other", "grass"}) == ["grass"]


def test_fill_copies_nearest_confident_label_prefer_next() -> None:
    words = [["on", "left", "a", "couch", "and", "a", "tree"]] * 3
    tags = [["couch", "couch", "couch", "couch", "tree", "tree", "tree"]] * 3
    tagger = train_baseline("fill", words, tags, min_count=3, min_share=0.9)
    # every word is peaked (share 1) except "a" (3 couch, 3 tree); x, y, z are unseen
    assert tagger.tag(["x", "couch", "y", "z", "tree"]) == ["couch", "couch", "couch", "tree", "tree"]
    # equal distance from both anchors: the next one wins by default, the previous one on request
    assert tagger.tag(["couch", "y", "tree"]) == ["couch", "tree", "tree"]
    previous = train_baseline("fill", words, tags, min_count=3, min_share=0.9, prefer="previous")
    assert previous.tag(["couch", "y", "tree"]) == ["couch", "couch", "tree"]
    # no confident word at all: per-word majority
    assert tagger.tag(["zebra"]) == ["couch"]


def test_fill_respects_allowed_labels() -> None:
    tagger = train_baseline("fill", WORDS, TAGS, min_count=1, min_share=0.5)
    out = tagger.tag(["a", "dog", "on", "the", "grass"], allowed_labels={"grass", "sky-other"})
    assert set(out) <= {"grass", "sky-other"}


def test_bad_inputs_are_errors() -> None:
    tagger = train_baseline("word-majority", WORDS, TAGS)
    with pytest.raises(TrecsEvalError, match="none of the allowed labels"):
        tagger.tag(["dog"], allowed_labels={"zebra"})
    with pytest.raises(TrecsEvalError, match="not a string"):
        tagger.tag("the dog")
    with pytest.raises(ValueError, match="bad fill options"):
        train_baseline("fill", WORDS, TAGS, min_share=1.5)

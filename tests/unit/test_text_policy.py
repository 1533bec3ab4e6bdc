"""Text policies with CLIP's real tokenizer (its vocabulary ships inside open_clip; no download)."""

from __future__ import annotations

import inspect
from pathlib import Path

import open_clip
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trecs_eval.data.narratives import Narrative, TimedUtterance
from trecs_eval.errors import ConfigError, TrecsEvalError
from trecs_eval.features.text_policy import (
    DEFAULT_TEXT_POLICY,
    chunk_narrative,
    narrative_units,
)

CONTEXT = 77
MAX_TOKENS = CONTEXT - 2
N_REAL_NARRATIVES = 1500


@pytest.fixture(scope="module")
def tokenizer() -> open_clip.SimpleTokenizer:
    tok = open_clip.get_tokenizer("ViT-B-32")
    assert tok.context_length == CONTEXT
    return tok


def _count(tokenizer) -> object:
    return lambda text: len(tokenizer.encode(text))


def _narrative(caption: str, utterances: tuple[str, ...] = ()) -> Narrative:
    timed = tuple(TimedUtterance(u, float(i), float(i) + 1.0) for i, u in enumerate(utterances))
    return Narrative("coco", "42", 1, caption, timed_caption=timed)


@pytest.fixture(scope="module")
def real_long_narratives(sequence_labels_dir: Path, tokenizer) -> list[Narrative]:
    lines = (sequence_labels_dir / "val_coco.words.txt").read_text().splitlines()[:N_REAL_NARRATIVES]
    long = [_narrative(line) for line in lines if len(tokenizer.encode(line)) > MAX_TOKENS]
    assert len(long) >= 20, "LN-COCO val should have long narratives in its first lines"
    return long


def test_every_default_text_policy_keeps_the_words_truncation_drops(real_long_narratives, tokenizer) -> None:
    """The run config's and the embedder's defaults are the module's default, and that default
    embeds every word of a long narrative (truncation would drop the end: background, small objects)."""
    from trecs_eval.config import ExtractorSpec
    from trecs_eval.features.clip import ClipEmbedder

    embedder_default = inspect.signature(ClipEmbedder.__init__).parameters["text_policy"].default
    assert ExtractorSpec().text_policy == embedder_default == DEFAULT_TEXT_POLICY
    for narrative in real_long_narratives[:5]:
        result = chunk_narrative(narrative, DEFAULT_TEXT_POLICY, _count(tokenizer), CONTEXT)
        assert not result.truncated
        assert " ".join(result.chunks).split() == narrative.caption.split()


def test_real_long_narratives_chunks_fit_and_cover_every_word(real_long_narratives, tokenizer) -> None:
    count = _count(tokenizer)
    for narrative in real_long_narratives:
        result = chunk_narrative(narrative, "utterances", count, CONTEXT)
        assert len(result.chunks) >= 2 and result.over_length and not result.truncated
        assert all(len(tokenizer.encode(c)) <= MAX_TOKENS for c in result.chunks)
        assert " ".join(result.chunks).split() == narrative.caption.split()
        # what the model receives: start + tokens + end, nothing cut
        for row, chunk in zip(tokenizer(list(result.chunks)), result.chunks, strict=True):
            assert int((row != 0).sum()) == len(tokenizer.encode(chunk)) + 2


def test_truncate_reports_truncation_on_real_narratives(real_long_narratives, tokenizer) -> None:
    count = _count(tokenizer)
    for narrative in real_long_narratives[:20]:
        result = chunk_narrative(narrative, "truncate", count, CONTEXT)
        assert result.chunks == (narrative.caption,) and result.truncated and result.over_length
        tokens = tokenizer([narrative.caption])[0]
        assert int(tokens[-1]) == tokenizer.eot_token_id  # cut at 77, end token kept by open_clip
    short = _narrative("a dog runs on the grass")
    assert not chunk_narrative(short, "truncate", count, CONTEXT).truncated


def test_utterance_boundaries_are_respected_and_packed_greedily(tokenizer) -> None:
    count = _count(tokenizer)
    utterances = tuple(f"In this picture we can see object number {i} near the wall." for i in range(12))
    per_utterance = count(utterances[0])
    narrative = _narrative(" ".join(utterances), utterances)
    assert narrative_units(narrative) == list(utterances)
    result = chunk_narrative(narrative, "utterances", count, CONTEXT)
    per_chunk = MAX_TOKENS // per_utterance
    assert len(result.chunks) == -(-12 // per_chunk)
    expected = [" ".join(utterances[i : i + per_chunk]) for i in range(0, 12, per_chunk)]
    assert list(result.chunks) == expected


def test_sentences_used_when_utterances_do_not_match_caption(tokenizer) -> None:
    caption = "A cat sits on a mat. Behind it there is a window! Is it raining? Yes; it is."
    narrative = _narrative(caption, ("a cat sits", "on a different mat"))
    assert narrative_units(narrative) == ["A cat sits on a mat.", "Behind it there is a window!",
                                          "Is it raining?", "Yes;", "it is."]
    assert chunk_narrative(narrative, "utterances", _count(tokenizer), CONTEXT).chunks == (caption,)


def test_one_overlong_sentence_is_split_between_words(tokenizer) -> None:
    count = _count(tokenizer)
    caption = " ".join(f"there is a chair{i} and a table{i}" for i in range(30)) + "."
    result = chunk_narrative(_narrative(caption), "utterances", count, CONTEXT)
    assert len(result.chunks) >= 3 and not result.truncated
    assert all(count(c) <= MAX_TOKENS for c in result.chunks)
    assert " ".join(result.chunks).split() == caption.split()


def test_a_single_huge_word_is_reported_truncated(tokenizer) -> None:
    word = "x" + "qz" * 200  # one whitespace-free token far beyond 75 word pieces
    result = chunk_narrative(_narrative(f"a dog. {word}"), "utterances", _count(tokenizer), CONTEXT)
    assert result.truncated


def test_bad_policy_and_empty_caption() -> None:
    with pytest.raises(ConfigError, match="did you mean 'utterances'"):
        chunk_narrative(_narrative("a dog"), "utterance", len, CONTEXT)
    with pytest.raises(TrecsEvalError, match="empty caption"):
        chunk_narrative(_narrative("   "), "utterances", len, CONTEXT)


_WORDS = ["a", "dog", "red", "umbrella", "in", "the", "background", "we", "can", "see", "trees,",
          "buildings", "sky", "x" * 30, "it's", "&", "left-side", "2", "people"]


@settings(max_examples=60, deadline=None)
@given(
    sentences=st.lists(
        st.tuples(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=60), st.sampled_from(".!?;")),
        min_size=1, max_size=8,
    ),
    as_utterances=st.booleans(),
)
def test_property_chunks_fit_and_cover(tokenizer, sentences, as_utterances) -> None:
    units = tuple(" ".join(words) + end for words, end in sentences)
    caption = " ".join(units)
    narrative = _narrative(caption, units if as_utterances else ())
    result = chunk_narrative(narrative, "utterances", _count(tokenizer), CONTEXT)
    assert not result.truncated
    assert all(len(tokenizer.encode(c)) <= MAX_TOKENS for c in result.chunks)
    assert " ".join(result.chunks).split() == caption.split()
    assert result.over_length == (len(tokenizer.encode(caption)) > MAX_TOKENS)
    if not result.over_length:
        assert result.chunks == (caption,)  # a narrative that fits is embedded whole, as with truncate

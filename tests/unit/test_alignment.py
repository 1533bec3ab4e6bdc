"""Property tests of the word <-> trace alignment rule (narratives.align_utterances docstring)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trecs_eval.data.narratives import (
    Narrative,
    TimedUtterance,
    TracePoint,
    align_utterances,
    tokenize,
    word_points,
)

coord = st.floats(-0.2, 1.2, allow_nan=False)
time = st.floats(0.0, 10.0, allow_nan=False)
point = st.builds(TracePoint, coord, coord, time)
segments = st.lists(st.lists(point, max_size=8).map(tuple), max_size=4).map(tuple)
word = st.sampled_from(["a", "dog", "sky", "in", "the", "it's", "grass", "<unk>"])


@st.composite
def utterances(draw) -> tuple[TimedUtterance, ...]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        start, end = sorted((draw(time), draw(time)))
        text = " ".join(draw(st.lists(word, min_size=1, max_size=4)))
        out.append(TimedUtterance(text + draw(st.sampled_from(["", ",", "."])), start, end))
    return tuple(out)


narratives = st.builds(
    lambda utts, traces: Narrative("d", "1", 1, " ".join(u.utterance for u in utts) or "x",
                                   utts, traces),
    utterances(), segments,
)
SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(narratives)
def test_each_utterance_gets_exactly_the_points_in_its_closed_interval(narrative):
    flat = [p for seg in narrative.traces for p in seg]
    for utt, aligned in zip(narrative.timed_caption, align_utterances(narrative), strict=True):
        expected = [(min(max(p.x, 0.0), 1.0), min(max(p.y, 0.0), 1.0)) for p in flat
                    if utt.start_time <= p.t <= utt.end_time]  # trace order kept
        assert aligned.points.shape == (len(expected), 2)
        assert aligned.points.dtype == np.float64
        np.testing.assert_array_equal(aligned.points, np.asarray(expected).reshape(-1, 2))


@SETTINGS
@given(utterances(), st.lists(time, max_size=20))
def test_a_point_goes_to_exactly_the_utterances_whose_interval_contains_it(utts, times):
    # distinct in-range x values identify each point after alignment
    trace = (tuple(TracePoint(i / 100, 0.5, t) for i, t in enumerate(times)),)
    aligned = align_utterances(Narrative("d", "1", 1, "x", utts, trace))
    for i, t in enumerate(times):
        owners = [k for k, u in enumerate(aligned) if (u.points[:, 0] == i / 100).any()]
        assert owners == [k for k, u in enumerate(utts) if u.start_time <= t <= u.end_time]


@SETTINGS
@given(narratives)
def test_points_are_clipped_and_empty_utterances_get_empty_arrays(narrative):
    for u in align_utterances(narrative):
        assert u.points.ndim == 2 and u.points.shape[1] == 2
        assert (u.points >= 0).all() and (u.points <= 1).all()
    no_trace = Narrative("d", "1", 1, narrative.caption, narrative.timed_caption, ())
    assert all(u.points.shape == (0, 2) for u in align_utterances(no_trace))


@SETTINGS
@given(narratives)
def test_word_order_is_preserved(narrative):
    expected = [w for u in narrative.timed_caption for w in tokenize(u.utterance)]
    assert [w for w, _ in word_points(narrative)] == expected
    assert [w for u in align_utterances(narrative) for w in u.words] == expected


def test_boundary_point_goes_to_both_neighbours():
    utts = (TimedUtterance("a dog", 0.0, 1.0), TimedUtterance("the sky", 1.0, 2.0),
            TimedUtterance("grass", 5.0, 6.0))
    trace = ((TracePoint(0.5, 0.5, 1.0), TracePoint(1.5, -0.5, 1.5)),)
    a, b, c = align_utterances(Narrative("d", "1", 1, "a dog the sky grass", utts, trace))
    np.testing.assert_array_equal(a.points, [[0.5, 0.5]])
    np.testing.assert_array_equal(b.points, [[0.5, 0.5], [1.0, 0.0]])
    assert c.points.shape == (0, 2)


def test_tokenize_gives_back_every_released_words_line(sequence_labels_dir):
    # The released words files are already tokenized: tokenize must be the identity on them
    # (keeps <unk>, it's, 's, 'stop', women´s, ¨stop¨).
    for split in ("val_coco", "val_oi"):
        text = (sequence_labels_dir / f"{split}.words.txt").read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            assert tokenize(line) == line.split(), (split, number)


@SETTINGS
@given(st.text(max_size=60))
def test_tokenize_is_idempotent_and_clean(text):
    words = tokenize(text)
    assert tokenize(" ".join(words)) == words
    for w in words:
        assert w == w.lower() and w.strip() == w and w.strip("'")
        assert not any(c in w for c in ",.;:!?\"()[]{}-/") and ("<" not in w or w == "<unk>")

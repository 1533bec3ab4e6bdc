"""Localized Narratives records and the word <-> mouse-trace alignment.

A Localized Narrative is a spoken image description (``caption``), its transcription split
into timed utterances (``timed_caption``), and the mouse trace the speaker drew while talking
(``traces``: segments of (x, y, t) points, x/y normalized with the origin top-left, t on the
same clock as the utterances).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# ASCII punctuation except the apostrophe and <> (kept for ``<unk>``) separates words. Non-ASCII
# marks stay inside words: the released TReCS words files spell ``women´s`` and ``¨stop¨``.
_SEPARATOR = re.compile("[" + re.escape("".join(sorted(set(string.punctuation) - set("'<>")))) + "]+")


def tokenize(text: str) -> list[str]:
    """Words as the released TReCS files spell them: lower-case, ASCII punctuation stripped.

    Apostrophes stay where they are (``it's``, ``'s``, ``'stop'`` all occur in the released
    files); a token of apostrophes only is dropped; ``<unk>`` is kept whole; non-ASCII marks
    (``´``, ``¨``) are kept as the released files keep them. Tokenizing a line of a released
    words file gives back ``line.split()``.

    >>> tokenize("In this image, we can see a Dog's toy.")
    ['in', 'this', 'image', 'we', 'can', 'see', 'a', "dog's", 'toy']
    """
    words = []
    for raw in _SEPARATOR.sub(" ", text.lower()).split():
        word = raw if raw == "<unk>" else raw.replace("<", "").replace(">", "")
        if word.strip("'"):
            words.append(word)
    return words


@dataclass(frozen=True)
class TimedUtterance:
    """One transcribed utterance and the time span (seconds) in which it was spoken."""

    utterance: str
    start_time: float
    end_time: float


@dataclass(frozen=True)
class TracePoint:
    """One mouse-trace point: normalized x, y (origin top-left; may lie slightly outside [0, 1]), time t."""

    x: float
    y: float
    t: float


@dataclass(frozen=True)
class Narrative:
    """One Localized Narrative. ``item_id`` is ``f"{image_id}_{annotator_id}"`` as in the TReCS files."""

    dataset_id: str
    image_id: str
    annotator_id: int
    caption: str
    timed_caption: tuple[TimedUtterance, ...] = ()
    traces: tuple[tuple[TracePoint, ...], ...] = ()
    voice_recording: str = ""

    @property
    def item_id(self) -> str:
        return f"{self.image_id}_{self.annotator_id}"

    @property
    def words(self) -> list[str]:
        """Tokenized caption (the TReCS word sequence)."""
        return tokenize(self.caption)

    def trace_array(self) -> np.ndarray:
        """All segments flattened in order: (N, 3) float64 array of x, y, t (unclipped)."""
        points = [(p.x, p.y, p.t) for segment in self.traces for p in segment]
        return np.asarray(points, dtype=np.float64).reshape(-1, 3)


@dataclass(frozen=True)
class AlignedUtterance:
    """An utterance's words and the trace points drawn while it was spoken."""

    words: tuple[str, ...]
    start_time: float
    end_time: float
    points: np.ndarray = field(compare=False)  # (K, 2) float64 x, y clipped to [0, 1]


def align_utterances(narrative: Narrative) -> list[AlignedUtterance]:
    """Attach trace points to each utterance of ``timed_caption``.

    Rule: all trace segments are flattened; utterance ``u`` gets every point with
    ``u.start_time <= t <= u.end_time`` (closed interval, so a point on a shared boundary goes
    to both neighbours), in trace order, with x and y clipped to [0, 1]. Words are
    ``tokenize(u.utterance)`` in order. An utterance with no points gets a (0, 2) array.
    """
    trace = narrative.trace_array()
    times = trace[:, 2]
    xy = np.clip(trace[:, :2], 0.0, 1.0)
    aligned = []
    for utt in narrative.timed_caption:
        inside = (times >= utt.start_time) & (times <= utt.end_time)
        aligned.append(
            AlignedUtterance(
                words=tuple(tokenize(utt.utterance)),
                start_time=utt.start_time,
                end_time=utt.end_time,
                points=xy[inside].reshape(-1, 2),
            )
        )
    return aligned


def word_points(narrative: Narrative) -> list[tuple[str, np.ndarray]]:
    """Per word of the narrative (utterance order), the (K, 2) points of its utterance.

    Every word of an utterance shares the utterance's points: Localized Narratives time
    utterances, not single words.
    """
    return [(w, u.points) for u in align_utterances(narrative) for w in u.words]


def points_for_words(narrative: Narrative, words: Sequence[str]) -> list[np.ndarray]:
    """(K, 2) trace points per word of ``words`` (normally ``narrative.words``).

    Words pair by position with :func:`word_points` when the utterance words equal ``words``;
    otherwise they are matched greedily in order, and a word not found gets no points.
    """
    aligned = word_points(narrative)
    if [w for w, _ in aligned] == list(words):
        return [p for _, p in aligned]
    out: list[np.ndarray] = []
    j = 0
    for word in words:
        k = next((k for k in range(j, len(aligned)) if aligned[k][0] == word), None)
        out.append(np.zeros((0, 2)) if k is None else aligned[k][1])
        j = j if k is None else k + 1
    return out

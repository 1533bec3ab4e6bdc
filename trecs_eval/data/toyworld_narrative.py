"""Toyworld narratives: what the speaker says, when, and where the mouse goes.

The speaker visits the visible objects in an order (left to right, or the biggest first), then
the background stuff. Each visit is one timed utterance ("a brown dog sitting", "on the green
grass", "in the background we can see the blue sky"); while it is spoken the mouse scribbles
over that object; between utterances it moves to the next object. Times are whole
milliseconds; trace points are sampled every :data:`SAMPLE_MS` ms, rounded to 4 decimals like
Localized Narratives, with noise, and a few overshoot points just outside [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trecs_eval.data.narratives import tokenize
from trecs_eval.data.toyworld_classes import CLASSES, THEMES
from trecs_eval.data.toyworld_render import BandLayer, Layout, ShapeLayer

SAMPLE_MS = 66  # mouse sampling interval (about 15 Hz)
TRACE_NOISE_STD = 0.004  # normalized units of hand jitter
TRACE_LIMIT = 0.1  # traces stay inside [-0.1, 1.1]
MIN_STUFF_FRACTION = 0.02  # stuff must cover 2% of the image to be mentioned
SCRIBBLE_RADIUS = 0.12  # stuff scribbles stay within this (normalized) radius of their focus

_OPENERS = ("in this image we can see", "in this picture we can see", "here we can see",
            "in this image there is", "in the front we can see")
_ALSO = ("and", "and", "we can also see", "beside that there is", "next to it there is")
_BACKGROUND = ("in the background we can see", "behind that there is", "we can also see", "and")
_LISTING = ("next to it", "beside that")  # connectors that follow a comma
_SENTENCE_STARTS = ("in the background", "behind that", "we can also", "at the top", "at the bottom",
                    "on the left", "on the right", "in the middle", "this picture")


@dataclass(frozen=True)
class Visit:
    """One utterance: its text, the instance the mouse scribbles over (a thing or not), an
    optional focus pixel (row, col) for stuff, and the label it mentions (None for filler)."""

    text: str
    instance: int
    thing: bool
    focus: tuple[int, int] | None
    mentioned: int | None


def _article(adjective: str, noun: str, article: str) -> str:
    words = " ".join(w for w in (adjective, noun) if w)
    if article == "a":
        article = "an" if words[0] in "aeiou" else "a"
    return f"{article} {words}".strip()


def _thing_phrase(layer: ShapeLayer, seen: set[str], rng: np.random.Generator) -> str:
    """"a brown dog sitting"; "another ..." when the same noun was said before (``seen`` grows)."""
    cls = CLASSES[layer.name]
    adjective = cls.colours[layer.colour].adjective if rng.random() < 0.8 else ""
    noun = cls.nouns[int(rng.integers(len(cls.nouns)))]
    phrase = f"another {adjective} {noun}".replace("  ", " ") if noun in seen else _article(
        adjective, noun, "a")
    seen.add(noun)
    verb = cls.verbs[int(rng.integers(len(cls.verbs)))]
    return f"{phrase} {verb}".strip()


def _connector(options: tuple[str, ...], used: set[str], rng: np.random.Generator) -> str:
    """A connector not said yet in this narrative (speakers vary them), else "and"."""
    fresh = [c for c in options if c not in used]
    if not fresh:
        return "and"
    choice = fresh[int(rng.integers(len(fresh)))]
    if choice != "and":
        used.add(choice)
    return choice


def _stuff_phrase(name: str, colour: int, rng: np.random.Generator) -> str:
    cls = CLASSES[name]
    adjective = cls.colours[colour].adjective if rng.random() < 0.7 else ""
    noun = cls.nouns[int(rng.integers(len(cls.nouns)))]
    return _article(adjective, noun, cls.article)


def plan_visits(layout: Layout, instances: np.ndarray, rng: np.random.Generator) -> list[Visit]:
    """The utterances of a scene in speaking order (opener, things, background stuff)."""
    size = instances.shape[0]
    n_ids = max(lay.instance for lay in (*layout.bands, *layout.shapes)) + 1
    area = np.bincount(instances.ravel(), minlength=n_ids)
    things = [s for s in layout.shapes if CLASSES[s.name].kind == "thing" and area[s.instance] > 0]
    if rng.random() < 0.5:
        things.sort(key=lambda s: s.box[0] + s.box[2] / 2)  # the speaker goes left to right
    else:
        things.sort(key=lambda s: -area[s.instance])  # the speaker starts with the biggest
    stuff: dict[int, BandLayer | ShapeLayer] = {}
    for lay in (*layout.bands, *layout.shapes):
        if CLASSES[lay.name].kind != "thing":
            stuff.setdefault(lay.instance, lay)
    mentioned: set[int] = set()
    seen: set[str] = set()  # nouns said so far
    used: set[str] = set()  # connectors said so far
    visits: list[Visit] = []
    for k, thing in enumerate(things):
        label = CLASSES[thing.name].label
        prefix = "" if k == 0 else _connector(_ALSO, used, rng) + " "
        visits.append(Visit(prefix + _thing_phrase(thing, seen, rng), thing.instance, True, None, label))
        below = _ground_under(thing, instances)
        if below is not None and below[0] in stuff and below[0] not in mentioned and rng.random() < 0.6 \
                and area[below[0]] >= MIN_STUFF_FRACTION * size * size:
            lay = stuff[below[0]]
            prep = "in" if lay.name in ("sea", "river", "sky-other") else "on"
            text = f"{prep} {_stuff_phrase(lay.name, lay.colour, rng)}"
            visits.append(Visit(text, lay.instance, False, below[1], CLASSES[lay.name].label))
            mentioned.add(lay.instance)
    rest = [i for i in sorted(stuff) if i not in mentioned and area[i] >= MIN_STUFF_FRACTION * size * size]
    for k, inst in enumerate(rest):
        lay = stuff[inst]
        lead = _connector(_BACKGROUND[:-1], used, rng) if k == 0 or rng.random() < 0.3 else "and"
        visits.append(Visit(f"{lead} {_stuff_phrase(lay.name, lay.colour, rng)}", inst, False, None,
                            CLASSES[lay.name].label))
    opener = _OPENERS[int(rng.integers(len(_OPENERS)))]
    if rng.random() < 0.3:
        outdoor = next(t.outdoor for t in THEMES if t.name == layout.theme)
        opener = f"this picture is taken {'outside' if outdoor else 'inside'} and {opener}"
    first = visits[0] if visits else Visit("", int(instances[size // 2, size // 2]), False, None, None)
    return [Visit(opener, first.instance, first.thing, first.focus, None), *visits]


def _ground_under(thing: ShapeLayer, instances: np.ndarray) -> tuple[int, tuple[int, int]] | None:
    size = instances.shape[0]
    x0, y0, w, h = thing.box
    row = int((y0 + h) * size) + 2
    col = int((x0 + w / 2) * size)
    if not (0 <= row < size and 0 <= col < size):
        return None
    return int(instances[row, col]), (row, col)


def caption_of(utterances: list[str]) -> str:
    """Written caption: utterances joined with commas and full stops, sentences capitalized.

    Only punctuation and case are added, so ``tokenize(caption)`` equals the utterances' words.
    """
    parts: list[str] = []
    for k, text in enumerate(utterances):
        if k and text.startswith(_SENTENCE_STARTS):
            parts[-1] += "."
        elif k > 1 and text.startswith(_LISTING):
            parts[-1] += ","
        parts.append(text)
    sentences = " ".join(parts).split(". ")
    caption = ". ".join(s[:1].upper() + s[1:] for s in sentences) + "."
    if tokenize(caption) != [w for u in utterances for w in tokenize(u)]:
        raise ValueError(f"caption words differ from the utterances' words: {caption!r}")
    return caption

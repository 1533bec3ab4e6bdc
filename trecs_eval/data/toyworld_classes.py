"""Toyworld vocabulary: the COCO-Stuff classes a toy scene is built from, and the scene themes.

Every class has a fixed look (colour variants and a texture kind with a period, so an image
feature can tell classes apart), a shape (things and stuff blobs; stuff bands cover whole rows),
and the words a speaker uses for it. 20 stuff and 18 thing classes (38 in all) recur across
scenes, so masks retrieved from one seed's split find the classes of another seed's scenes.

Geometry is in the unit box of the object (``u`` to the right, ``v`` down, both in [0, 1]).
"""

# ruff: noqa: E501  (the class table below reads best one class per block; lines run a little long)
from __future__ import annotations

from dataclasses import dataclass

from trecs_eval.data.coco_stuff import NAME_TO_ID

RGB = tuple[int, int, int]
# A shape part: ("ellipse" | "rect" | "top_half_ellipse", u0, v0, u1, v1) or ("poly", (u, v), ...).
Part = tuple


@dataclass(frozen=True)
class ColourVariant:
    """One look of a class: the adjective a speaker uses ("" = none), base and texture colours."""

    adjective: str
    base: RGB
    alt: RGB


@dataclass(frozen=True)
class ToyClass:
    """One COCO-Stuff class as drawn and named in toyworld.

    ``kind``: "band" (stuff covering rows between two wavy boundaries), "blob" (stuff drawn as a
    shape, e.g. trees, clouds) or "thing". ``texture`` = (pattern kind, period as a fraction of
    the image side). ``height`` is the object height as a fraction of the image side, ``aspect``
    width / height. ``article`` is the article used for the stuff mention ("the", "a" or "").
    """

    name: str
    kind: str
    colours: tuple[ColourVariant, ...]
    texture: tuple[str, float]
    nouns: tuple[str, ...]
    verbs: tuple[str, ...] = ("",)
    parts: tuple[Part, ...] = ()
    height: float = 0.0
    aspect: float = 1.0
    article: str = "the"
    top_edge: str = "wave"  # band only: "wave", "peaks", "skyline", "flat", "hill"

    @property
    def label(self) -> int:
        """COCO-Stuff id of the class."""
        return NAME_TO_ID[self.name]


def _c(adjective: str, base: RGB, alt: RGB) -> ColourVariant:
    return ColourVariant(adjective, base, alt)


_LEGS4 = (("rect", 0.15, 0.5, 0.25, 1.0), ("rect", 0.3, 0.5, 0.4, 1.0),
          ("rect", 0.62, 0.5, 0.72, 1.0), ("rect", 0.76, 0.5, 0.86, 1.0))

_STUFF = (
    ToyClass("sky-other", "band", (_c("blue", (105, 165, 235), (185, 215, 250)),), ("gradient", 1.0),
             ("sky",), top_edge="flat"),
    ToyClass("sea", "band", (_c("blue", (25, 85, 160), (70, 145, 205)),), ("waves", 0.05),
             ("sea", "ocean", "water")),
    ToyClass("river", "band", (_c("", (55, 115, 125), (95, 160, 160)),), ("stripes_h", 0.025),
             ("river", "water")),
    ToyClass("sand", "band", (_c("", (222, 196, 140), (196, 166, 108)),), ("grain", 0.012), ("sand",),
             article=""),
    ToyClass("grass", "band", (_c("green", (62, 150, 50), (100, 195, 75)),), ("blotch", 0.02), ("grass",),
             article=""),
    ToyClass("road", "band", (_c("", (88, 88, 94), (125, 125, 130)),), ("grain", 0.008), ("road",),
             top_edge="flat"),
    ToyClass("pavement", "band", (_c("", (172, 162, 150), (138, 128, 118)),), ("checker", 0.06),
             ("footpath", "pavement", "sidewalk"), top_edge="flat"),
    ToyClass("building-other", "band", (_c("", (150, 128, 118), (80, 84, 110)),), ("checker", 0.035),
             ("buildings",), article="", top_edge="skyline"),
    ToyClass("wall-concrete", "band", (_c("white", (218, 212, 200), (190, 184, 172)),
                                       _c("yellow", (232, 212, 150), (205, 185, 125))),
             ("smooth", 0.12), ("wall",), top_edge="flat"),
    ToyClass("wall-brick", "band", (_c("red", (168, 68, 48), (215, 195, 175)),), ("bricks", 0.045),
             ("wall", "brick wall"), top_edge="flat"),
    ToyClass("floor-wood", "band", (_c("brown", (150, 100, 58), (108, 68, 38)),), ("planks", 0.06),
             ("floor", "wooden floor"), top_edge="flat"),
    ToyClass("carpet", "band", (_c("grey", (118, 118, 140), (92, 92, 118)),), ("dots", 0.03), ("carpet",),
             top_edge="flat"),
    ToyClass("mountain", "band", (_c("", (112, 100, 112), (78, 74, 86)),), ("blotch", 0.08),
             ("mountains", "hills"), article="", top_edge="peaks"),
    ToyClass("hill", "band", (_c("green", (92, 132, 62), (70, 108, 48)),), ("smooth", 0.15), ("hill",),
             top_edge="hill"),
    ToyClass("snow", "band", (_c("white", (245, 248, 252), (212, 220, 234)),), ("smooth", 0.1), ("snow",),
             article=""),
    ToyClass("fence", "band", (_c("wooden", (165, 122, 72), (88, 58, 30)),), ("stripes_v", 0.03),
             ("fence",), top_edge="flat"),
    ToyClass("clouds", "blob", (_c("white", (242, 242, 246), (200, 205, 216)),), ("smooth", 0.06),
             ("clouds",), parts=(("ellipse", 0.0, 0.3, 0.5, 1.0), ("ellipse", 0.25, 0.0, 0.75, 0.9),
                                 ("ellipse", 0.5, 0.3, 1.0, 1.0)),
             height=0.1, aspect=2.0, article=""),
    ToyClass("tree", "blob", (_c("green", (32, 100, 42), (64, 142, 52)),), ("blotch", 0.035), ("trees",),
             parts=(("ellipse", 0.0, 0.0, 1.0, 0.72), ("rect", 0.4, 0.6, 0.6, 1.0)),
             height=0.3, aspect=0.7, article=""),
    ToyClass("bush", "blob", (_c("green", (40, 120, 62), (18, 78, 30)),), ("blotch", 0.025),
             ("bushes", "plants"), parts=(("ellipse", 0.0, 0.3, 0.6, 1.0), ("ellipse", 0.4, 0.2, 1.0, 1.0),
                                         ("ellipse", 0.2, 0.0, 0.8, 0.8)),
             height=0.1, aspect=1.6, article=""),
    ToyClass("house", "blob", (_c("white", (235, 230, 215), (182, 60, 50)),
                               _c("yellow", (230, 205, 120), (150, 70, 50))), ("stripes_h", 0.03),
             ("house",), parts=(("rect", 0.1, 0.42, 0.9, 1.0), ("poly", (0.0, 0.45), (0.5, 0.0), (1.0, 0.45))),
             height=0.26, aspect=1.1, article="a"),
)

_THINGS = (
    ToyClass("person", "thing", (_c("", (200, 50, 50), (240, 190, 150)), _c("", (50, 70, 170), (240, 190, 150)),
                                 _c("", (230, 200, 60), (200, 150, 110))), ("stripes_h", 0.04),
             ("person", "man", "woman", "boy", "girl"), ("standing", "walking", ""),
             (("ellipse", 0.3, 0.0, 0.7, 0.22), ("rect", 0.12, 0.2, 0.88, 0.62),
              ("rect", 0.22, 0.6, 0.46, 1.0), ("rect", 0.54, 0.6, 0.78, 1.0)), 0.3, 0.42),
    ToyClass("dog", "thing", (_c("brown", (140, 90, 50), (100, 60, 30)), _c("black", (40, 35, 35), (75, 68, 62)),
                              _c("white", (235, 230, 220), (198, 192, 182))), ("grain", 0.015),
             ("dog", "puppy"), ("sitting", "running", ""),
             (("ellipse", 0.05, 0.25, 0.8, 0.7), ("ellipse", 0.62, 0.0, 1.0, 0.42),
              ("rect", 0.15, 0.55, 0.3, 1.0), ("rect", 0.55, 0.55, 0.7, 1.0)), 0.17, 1.4),
    ToyClass("cat", "thing", (_c("grey", (130, 130, 136), (88, 88, 94)), _c("orange", (222, 140, 60), (176, 98, 38))),
             ("stripes_d", 0.025), ("cat",), ("sitting", "sleeping", ""),
             (("ellipse", 0.05, 0.3, 0.75, 0.85), ("ellipse", 0.58, 0.05, 0.96, 0.48),
              ("poly", (0.6, 0.15), (0.65, 0.0), (0.72, 0.12)), ("poly", (0.82, 0.12), (0.9, 0.0), (0.94, 0.16)),
              ("rect", 0.15, 0.7, 0.27, 1.0), ("rect", 0.52, 0.7, 0.64, 1.0)), 0.14, 1.3),
    ToyClass("car", "thing", (_c("red", (200, 30, 30), (240, 90, 90)), _c("blue", (30, 60, 190), (85, 125, 230)),
                              _c("white", (236, 236, 240), (188, 188, 198)), _c("black", (30, 30, 35), (72, 72, 84))),
             ("smooth", 0.05), ("car",), ("parked", ""),
             (("rect", 0.0, 0.35, 1.0, 0.8), ("poly", (0.2, 0.36), (0.3, 0.0), (0.7, 0.0), (0.8, 0.36)),
              ("ellipse", 0.1, 0.6, 0.3, 1.0), ("ellipse", 0.7, 0.6, 0.9, 1.0)), 0.17, 2.0),
    ToyClass("bus", "thing", (_c("yellow", (240, 200, 30), (60, 60, 70)), _c("red", (200, 40, 40), (60, 60, 70))),
             ("stripes_h", 0.09), ("bus",), ("",),
             (("rect", 0.0, 0.0, 1.0, 0.85), ("ellipse", 0.1, 0.7, 0.26, 1.0), ("ellipse", 0.74, 0.7, 0.9, 1.0)),
             0.26, 2.1),
    ToyClass("boat", "thing", (_c("white", (240, 240, 240), (180, 40, 40)), _c("red", (190, 40, 40), (240, 240, 240))),
             ("stripes_h", 0.04), ("boat", "ship"), ("sailing", ""),
             (("poly", (0.0, 0.6), (1.0, 0.6), (0.85, 1.0), (0.15, 1.0)),
              ("poly", (0.47, 0.0), (0.47, 0.6), (0.88, 0.6)), ("rect", 0.42, 0.0, 0.48, 0.62)), 0.18, 1.5),
    ToyClass("horse", "thing", (_c("brown", (122, 72, 40), (88, 50, 26)), _c("black", (35, 30, 30), (70, 60, 55))),
             ("smooth", 0.04), ("horse",), ("standing", "running", ""),
             (("ellipse", 0.1, 0.2, 0.85, 0.62), ("rect", 0.7, 0.05, 0.85, 0.4), ("ellipse", 0.72, 0.0, 1.0, 0.25), *_LEGS4), 0.26, 1.3),
    ToyClass("cow", "thing", (_c("", (30, 30, 30), (240, 240, 236)), _c("brown", (140, 80, 45), (235, 225, 210))),
             ("blotch", 0.05), ("cow",), ("grazing", "standing", ""),
             (("ellipse", 0.08, 0.2, 0.82, 0.62), ("ellipse", 0.74, 0.08, 1.0, 0.4), *_LEGS4), 0.22, 1.5),
    ToyClass("sheep", "thing", (_c("white", (236, 232, 220), (205, 200, 188)),), ("dots", 0.016), ("sheep",),
             ("grazing", ""), (("ellipse", 0.05, 0.15, 0.85, 0.75), ("ellipse", 0.74, 0.1, 1.0, 0.42),
                               ("rect", 0.2, 0.6, 0.3, 1.0), ("rect", 0.6, 0.6, 0.7, 1.0)), 0.15, 1.4),
    ToyClass("bench", "thing", (_c("wooden", (152, 100, 55), (108, 68, 34)),), ("stripes_h", 0.03), ("bench",),
             ("",), (("rect", 0.0, 0.35, 1.0, 0.55), ("rect", 0.0, 0.0, 1.0, 0.22), ("rect", 0.05, 0.2, 0.12, 1.0),
                     ("rect", 0.88, 0.2, 0.95, 1.0)), 0.13, 2.0),
    ToyClass("chair", "thing", (_c("wooden", (140, 95, 55), (100, 65, 35)), _c("black", (35, 35, 38), (70, 70, 75))),
             ("stripes_v", 0.03), ("chair",), ("",),
             (("rect", 0.1, 0.0, 0.9, 0.5), ("rect", 0.05, 0.45, 0.95, 0.62), ("rect", 0.08, 0.6, 0.2, 1.0),
              ("rect", 0.8, 0.6, 0.92, 1.0)), 0.22, 0.7),
    ToyClass("couch", "thing", (_c("grey", (122, 122, 128), (98, 98, 104)), _c("red", (172, 42, 42), (138, 30, 30)),
                                _c("blue", (50, 80, 150), (36, 60, 118))), ("checker", 0.02), ("couch", "sofa"),
             ("",), (("rect", 0.0, 0.35, 1.0, 0.9), ("rect", 0.05, 0.0, 0.95, 0.5), ("rect", 0.0, 0.25, 0.14, 0.9),
                     ("rect", 0.86, 0.25, 1.0, 0.9), ("rect", 0.05, 0.88, 0.12, 1.0),
                     ("rect", 0.88, 0.88, 0.95, 1.0)), 0.22, 2.0),
    ToyClass("tv", "thing", (_c("black", (22, 22, 28), (60, 62, 86)),), ("gradient", 0.2), ("television", "tv"),
             ("",), (("rect", 0.0, 0.0, 1.0, 0.8), ("rect", 0.42, 0.78, 0.58, 0.92), ("rect", 0.25, 0.9, 0.75, 1.0)),
             0.17, 1.5),
    ToyClass("potted-plant", "thing", (_c("green", (52, 140, 60), (148, 84, 50)),), ("blotch", 0.03),
             ("plant", "flower pot", "house plant"), ("",),
             (("ellipse", 0.0, 0.0, 1.0, 0.66), ("poly", (0.25, 0.6), (0.75, 0.6), (0.68, 1.0), (0.32, 1.0))),
             0.22, 0.7),
    ToyClass("umbrella", "thing", (_c("red", (222, 40, 40), (242, 242, 242)), _c("yellow", (242, 205, 40), (40, 90, 200))),
             ("stripes_v", 0.05), ("umbrella",), ("",),
             (("top_half_ellipse", 0.0, 0.0, 1.0, 0.64), ("rect", 0.46, 0.3, 0.54, 1.0)), 0.28, 1.0),
    ToyClass("kite", "thing", (_c("orange", (250, 140, 30), (250, 222, 60)), _c("red", (210, 30, 40), (250, 250, 250))),
             ("checker", 0.04), ("kite",), ("flying", ""),
             (("poly", (0.5, 0.0), (1.0, 0.4), (0.5, 1.0), (0.0, 0.4)),), 0.13, 0.8),
    ToyClass("bird", "thing", (_c("black", (30, 30, 32), (64, 64, 70)), _c("white", (240, 240, 240), (200, 200, 205))),
             ("smooth", 0.02), ("bird",), ("flying", ""),
             (("ellipse", 0.2, 0.35, 0.8, 0.8), ("poly", (0.3, 0.55), (0.55, 0.55), (0.1, 0.0)),
              ("poly", (0.45, 0.55), (0.72, 0.55), (0.95, 0.0)), ("ellipse", 0.68, 0.3, 0.98, 0.65)), 0.09, 1.6),
    ToyClass("dining-table", "thing", (_c("wooden", (160, 110, 60), (120, 80, 40)),), ("planks", 0.05),
             ("table",), ("",), (("rect", 0.0, 0.08, 1.0, 0.3), ("rect", 0.05, 0.28, 0.15, 1.0),
                                 ("rect", 0.85, 0.28, 0.95, 1.0)), 0.18, 1.8),
)

CLASSES: dict[str, ToyClass] = {c.name: c for c in _STUFF + _THINGS}
"""All toyworld classes by COCO-Stuff name (20 stuff, 18 things)."""


@dataclass(frozen=True)
class Band:
    """A stuff band of a theme: class choices, height range (fraction of the image) and its probability."""

    choices: tuple[str, ...]
    height: tuple[float, float]
    probability: float = 1.0


@dataclass(frozen=True)
class BlobSpec:
    """Stuff blobs of a theme: class, probability, count range, where ("sky" = inside the top band,
    "horizon" = standing on the top of the first ground band)."""

    name: str
    probability: float
    count: tuple[int, int]
    where: str


@dataclass(frozen=True)
class Theme:
    """A scene type: bands top to bottom (the last takes the remaining rows), blobs, and things with
    weights. ``ground`` maps each thing to the band classes it may stand on ("sky" things fly)."""

    name: str
    outdoor: bool
    bands: tuple[Band, ...]
    blobs: tuple[BlobSpec, ...]
    things: tuple[tuple[str, float], ...]
    n_things: tuple[int, int]


SKY_THINGS = frozenset({"bird", "kite"})
"""Things placed inside the top (sky) band instead of standing on the ground."""

GROUNDS: dict[str, frozenset[str]] = {
    "boat": frozenset({"sea", "river"}),
    "car": frozenset({"road"}),
    "bus": frozenset({"road"}),
}
"""Where a thing may stand; a thing not listed stands on any band but sky, sea, river, wall or fence."""

NOT_GROUND = frozenset({"sky-other", "sea", "river", "wall-concrete", "wall-brick", "fence", "mountain",
                        "building-other"})

_SKY = Band(("sky-other",), (0.2, 0.36))
THEMES: tuple[Theme, ...] = (
    Theme("beach", True, (_SKY, Band(("sea",), (0.15, 0.28)), Band(("sand",), (0.0, 0.0))),
          (BlobSpec("clouds", 0.7, (1, 3), "sky"),),
          (("person", 3), ("dog", 2), ("umbrella", 2), ("boat", 2), ("bird", 1), ("kite", 1)), (3, 6)),
    Theme("park", True, (_SKY, Band(("grass",), (0.35, 0.5)), Band(("road", "pavement"), (0.0, 0.0), 0.5)),
          (BlobSpec("tree", 0.9, (2, 4), "horizon"), BlobSpec("bush", 0.5, (1, 2), "horizon"),
           BlobSpec("clouds", 0.5, (1, 2), "sky")),
          (("person", 3), ("dog", 3), ("bench", 2), ("bird", 1), ("kite", 1)), (3, 5)),
    Theme("street", True, (Band(("sky-other",), (0.12, 0.22)), Band(("building-other",), (0.22, 0.3)),
                           Band(("pavement",), (0.1, 0.16)), Band(("road",), (0.0, 0.0))),
          (BlobSpec("clouds", 0.3, (1, 2), "sky"),),
          (("car", 3), ("bus", 1), ("person", 3), ("dog", 1)), (3, 6)),
    Theme("room", False, (Band(("wall-concrete", "wall-brick"), (0.5, 0.62)),
                          Band(("floor-wood", "carpet"), (0.0, 0.0))), (),
          (("couch", 2), ("chair", 2), ("tv", 1), ("potted-plant", 2), ("cat", 2), ("person", 2),
           ("dining-table", 1)), (3, 5)),
    Theme("farm", True, (_SKY, Band(("hill", "mountain"), (0.1, 0.18)), Band(("fence",), (0.04, 0.06), 0.5),
                         Band(("grass",), (0.0, 0.0))),
          (BlobSpec("house", 0.6, (1, 1), "horizon"), BlobSpec("tree", 0.6, (1, 3), "horizon"),
           BlobSpec("clouds", 0.6, (1, 2), "sky")),
          (("cow", 3), ("sheep", 3), ("horse", 2), ("person", 1), ("dog", 1)), (3, 6)),
    Theme("snow", True, (_SKY, Band(("mountain",), (0.16, 0.28)), Band(("snow",), (0.0, 0.0))),
          (BlobSpec("tree", 0.5, (1, 3), "horizon"), BlobSpec("house", 0.4, (1, 1), "horizon"),
           BlobSpec("clouds", 0.4, (1, 2), "sky")),
          (("person", 3), ("dog", 2)), (2, 4)),
    Theme("lake", True, (_SKY, Band(("hill",), (0.1, 0.16)), Band(("river",), (0.16, 0.24)),
                         Band(("grass",), (0.0, 0.0))),
          (BlobSpec("tree", 0.8, (2, 4), "horizon"), BlobSpec("clouds", 0.4, (1, 2), "sky")),
          (("boat", 2), ("person", 2), ("bird", 1), ("dog", 2), ("cow", 1)), (3, 5)),
)
"""Scene types; each scene picks one with equal probability."""


def vocabulary() -> tuple[str, ...]:
    """Names of all classes a toyworld scene can contain, sorted by COCO-Stuff id."""
    return tuple(sorted(CLASSES, key=lambda n: CLASSES[n].label))

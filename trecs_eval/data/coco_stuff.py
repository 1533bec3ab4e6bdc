"""COCO-Stuff label space: 182 ids, names as spelled in the TReCS tag files, a fixed palette.

Ids follow COCO-Stuff's ``labels.txt``: things 1-91 (COCO's numbering, including the 11
ids that COCO never annotates, e.g. 12 ``street-sign``), stuff 92-182, and 0 / 255 for
unlabeled pixels. Multi-word thing names are hyphenated (``traffic-light``), which is how
the released TReCS ``cleaned_tags`` files spell them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNLABELED_IDS = (0, 255)
FIRST_STUFF_ID = 92

# fmt: off
_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic-light", "fire-hydrant", "street-sign", "stop-sign", "parking-meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    "hat", "backpack", "umbrella", "shoe", "eye-glasses", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports-ball", "kite", "baseball-bat", "baseball-glove",
    "skateboard", "surfboard", "tennis-racket", "bottle", "plate", "wine-glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot-dog", "pizza", "donut", "cake", "chair", "couch", "potted-plant", "bed",
    "mirror", "dining-table", "window", "desk", "toilet", "door", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell-phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "blender", "book", "clock", "vase", "scissors", "teddy-bear",
    "hair-drier", "toothbrush", "hair-brush",
    # stuff, 92..182
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
    "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence",
    "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower",
    "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other",
    "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain",
    "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic",
    "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof",
    "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent",
    "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete",
    "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)
# fmt: on
# Thing ids listed in COCO-Stuff's labels.txt but never annotated in COCO.
UNUSED_THING_IDS = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91})

assert len(_NAMES) == 182, len(_NAMES)


@dataclass(frozen=True)
class Label:
    """One COCO-Stuff class."""

    id: int
    name: str

    @property
    def is_thing(self) -> bool:
        return self.id < FIRST_STUFF_ID

    @property
    def is_stuff(self) -> bool:
        return self.id >= FIRST_STUFF_ID


LABELS: tuple[Label, ...] = tuple(Label(i + 1, n) for i, n in enumerate(_NAMES))
ID_TO_NAME: dict[int, str] = {lab.id: lab.name for lab in LABELS}
NAME_TO_ID: dict[str, int] = {lab.name: lab.id for lab in LABELS}


def label_id(name: str) -> int:
    """Id of a label name (``"sky-other"`` -> 157); spaces are accepted for hyphens."""
    from trecs_eval.errors import suggest

    key = name.strip().lower().replace(" ", "-")
    if key not in NAME_TO_ID:
        raise KeyError(f"unknown COCO-Stuff label {name!r}{suggest(key, NAME_TO_ID)}")
    return NAME_TO_ID[key]


def label_name(label: int) -> str:
    """Name of a label id; 0 and 255 are ``"unlabeled"``."""
    if label in UNLABELED_IDS:
        return "unlabeled"
    return ID_TO_NAME[int(label)]


def _make_palette() -> np.ndarray:
    # A fixed, seeded palette (not a user-visible random step): distinct, reproducible colours.
    rng = np.random.default_rng(20210105)
    palette = rng.integers(32, 256, size=(256, 3), dtype=np.uint8)
    palette[0] = palette[255] = 0
    return palette


PALETTE: np.ndarray = _make_palette()
"""(256, 3) uint8 colour per label id; unlabeled ids are black."""


def colorize(label_map: np.ndarray) -> np.ndarray:
    """H×W label ids -> H×W×3 uint8 palette picture."""
    return PALETTE[np.asarray(label_map, dtype=np.uint8)]

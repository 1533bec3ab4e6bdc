"""COCO panoptic's 133 classes mapped onto COCO-Stuff's 182 labels (:mod:`.coco_stuff`).

COCO panoptic (Kirillov et al. 2019; the label space of the public Mask2Former / OneFormer COCO
checkpoints) keeps COCO's 80 thing classes and reduces COCO-Stuff's 91 stuff classes to 53:
36 are kept as they are, 17 are *merged* from 2–4 COCO-Stuff classes, and the rest are dropped.

* things: the panoptic name with spaces for hyphens (``traffic light`` -> ``traffic-light``),
  the same id as in COCO-Stuff (COCO's category ids);
* the 36 kept stuff classes: the same name and id;
* a merged class ``X-merged`` maps to one *representative* COCO-Stuff label (below), and its
  members form a group: a segmenter with this label space cannot tell ``bush`` from ``tree``,
  so a metric asking "is there a bush here" must accept the group's representative;
* dropped COCO-Stuff classes (:data:`UNREPRESENTED`, e.g. ``plant-other``, ``metal``): no
  panoptic class covers them, a panoptic segmenter never outputs them.

Merged groups (panopticapi's merge of COCO-Stuff; the representative first)::

    tree-merged: tree, branch, bush, leaves        fence-merged: fence, cage, railing
    ceiling-merged: ceiling-other, ceiling-tile    sky-other-merged: sky-other, clouds, fog
    cabinet-merged: cabinet, cupboard              table-merged: table, desk-stuff
    floor-other-merged: floor-other, floor-marble, floor-tile
    pavement-merged: pavement, floor-stone         mountain-merged: mountain, hill
    grass-merged: grass, moss, straw               dirt-merged: dirt, mud
    paper-merged: paper, napkin                    food-other-merged: food-other, salad, vegetable
    building-other-merged: building-other, skyscraper   rock-merged: rock, stone
    wall-other-merged: wall-other, wall-concrete, wall-panel    rug-merged: rug, mat, carpet

>>> panoptic_to_coco_stuff_id("traffic light"), panoptic_to_coco_stuff_id("tree-merged")
(10, 169)
>>> sorted(label_name(i) for i in MERGED_GROUP_OF[label_id("bush")])
['branch', 'bush', 'leaves', 'tree']
"""

from __future__ import annotations

from trecs_eval.data.coco_stuff import LABELS, UNUSED_THING_IDS, label_id, label_name

# The 53 stuff classes in the order of the panoptic category list (ids 92..200 there).
PANOPTIC_STUFF_NAMES = (
    "banner", "blanket", "bridge", "cardboard", "counter", "curtain", "door-stuff", "floor-wood",
    "flower", "fruit", "gravel", "house", "light", "mirror-stuff", "net", "pillow", "platform",
    "playingfield", "railroad", "river", "road", "roof", "sand", "sea", "shelf", "snow", "stairs",
    "tent", "towel", "wall-brick", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "window-blind", "window-other", "tree-merged", "fence-merged", "ceiling-merged",
    "sky-other-merged", "cabinet-merged", "table-merged", "floor-other-merged", "pavement-merged",
    "mountain-merged", "grass-merged", "dirt-merged", "paper-merged", "food-other-merged",
    "building-other-merged", "rock-merged", "wall-other-merged", "rug-merged",
)
MERGED = {  # merged panoptic class -> its COCO-Stuff members, the representative first
    "tree-merged": ("tree", "branch", "bush", "leaves"),
    "fence-merged": ("fence", "cage", "railing"),
    "ceiling-merged": ("ceiling-other", "ceiling-tile"),
    "sky-other-merged": ("sky-other", "clouds", "fog"),
    "cabinet-merged": ("cabinet", "cupboard"),
    "table-merged": ("table", "desk-stuff"),
    "floor-other-merged": ("floor-other", "floor-marble", "floor-tile"),
    "pavement-merged": ("pavement", "floor-stone"),
    "mountain-merged": ("mountain", "hill"),
    "grass-merged": ("grass", "moss", "straw"),
    "dirt-merged": ("dirt", "mud"),
    "paper-merged": ("paper", "napkin"),
    "food-other-merged": ("food-other", "salad", "vegetable"),
    "building-other-merged": ("building-other", "skyscraper"),
    "rock-merged": ("rock", "stone"),
    "wall-other-merged": ("wall-other", "wall-concrete", "wall-panel"),
    "rug-merged": ("rug", "mat", "carpet"),
}
# COCO's 80 thing classes, in COCO order, with panoptic's spelling (spaces).
PANOPTIC_THING_NAMES = tuple(lab.name.replace("-", " ") for lab in LABELS
                             if lab.is_thing and lab.id not in UNUSED_THING_IDS)
PANOPTIC_NAMES = PANOPTIC_THING_NAMES + PANOPTIC_STUFF_NAMES
"""All 133 names in the order of the panoptic checkpoints' ``id2label`` (0..132)."""


def panoptic_to_coco_stuff_id(name: str) -> int:
    """COCO-Stuff id of a panoptic class name (the representative for a merged class)."""
    key = name.strip().lower()
    if key in MERGED:
        return label_id(MERGED[key][0])
    try:
        return label_id(key.replace(" ", "-"))
    except KeyError as err:
        raise KeyError(f"{name!r} is not a COCO panoptic class; {err.args[0]}") from err


MERGED_GROUP_OF: dict[int, frozenset[int]] = {
    label_id(member): frozenset(label_id(m) for m in members)
    for members in MERGED.values() for member in members
}
"""COCO-Stuff id -> the ids of its merged panoptic class (only ids that belong to a merged class)."""

REPRESENTATIVE: dict[int, int] = {
    label_id(member): label_id(members[0]) for members in MERGED.values() for member in members
}
"""COCO-Stuff id -> the id a panoptic segmenter reports for it (merged members only)."""

PANOPTIC_OUTPUT_IDS = frozenset(panoptic_to_coco_stuff_id(n) for n in PANOPTIC_NAMES)
"""The 133 COCO-Stuff ids a panoptic segmenter can output."""

UNREPRESENTED = frozenset(
    lab.id for lab in LABELS if lab.id not in UNUSED_THING_IDS
    and lab.id not in PANOPTIC_OUTPUT_IDS and lab.id not in REPRESENTATIVE)
"""COCO-Stuff ids no panoptic class covers (e.g. ``plant-other``): never scoreable with it."""


def canonical_id(label: int) -> int:
    """The id a panoptic segmenter reports for a COCO-Stuff id (itself unless merged)."""
    return REPRESENTATIVE.get(int(label), int(label))


__all__ = ["MERGED", "MERGED_GROUP_OF", "PANOPTIC_NAMES", "PANOPTIC_OUTPUT_IDS", "PANOPTIC_STUFF_NAMES",
           "PANOPTIC_THING_NAMES", "REPRESENTATIVE", "UNREPRESENTED", "canonical_id", "label_name",
           "panoptic_to_coco_stuff_id"]

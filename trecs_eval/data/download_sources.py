"""The public sources the real benchmarks need: where each lives, where it goes, who needs it.

Every source is a base URL plus remote paths; ``ROOT/<folder>/<file name>`` is where a file lands.
A mirror (``--base-url`` / ``$TRECS_EVAL_DOWNLOAD_BASE_URL``) must hold every source's remote
paths under one base URL: ``coco_val_localized_narratives.jsonl``, ``sequence_labels/...``,
``val2017.zip``, ``annotations_trainval2017.zip``, ``trecs_images.tar``, ``validation/{id}.jpg``...
The sizes are approximate (``data download --list`` prints them next to what is on disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from trecs_eval.errors import UnknownNameError, suggest

LN_BASE = "https://storage.googleapis.com/localized-narratives/annotations"
# The commit of google-research/trecs_image_generation that holds sequence_labels/ (pinned so
# the sha256 values below stay valid).
TRECS_COMMIT = "c18aff953ed2fab42be9f5f4de8e59e3a3b12140"
TRECS_BASE = f"https://raw.githubusercontent.com/google-research/trecs_image_generation/{TRECS_COMMIT}"
TRECS_IMAGES_BASE = "http://storage.googleapis.com/gresearch/trecs-image-generation"
COCO_BASE = "http://images.cocodataset.org/zips"
COCO_ANNOTATIONS_BASE = "http://images.cocodataset.org/annotations"
COCO_STUFF_BASE = "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset"
# The bucket the official Open Images downloader (downloader.py, boto3) reads: {split}/{image_id}.jpg.
OPEN_IMAGES_BASE = "https://open-images-dataset.s3.amazonaws.com"
OPEN_IMAGES_SPLIT = "validation"
LN_COCO_TRAIN_SHARDS = 4


@dataclass(frozen=True)
class RemoteFile:
    """One file: ``base_url/remote_path`` -> ``ROOT/folder/<last part of the path that existed>``.

    ``alternatives`` are other remote paths tried in order when the server answers 404 (the
    TReCS training tags are ``train_coco.tags.txt`` in the repository README but the val file is
    ``cleaned_tags``: whichever exists is taken). ``extract``: members to unpack from a zip
    (prefixes; ``()`` = everything) or, for a ``.tar``, ``()`` to unpack it all (safely).
    """

    remote_path: str
    sha256: str | None = None  # pinned where known; None: recorded on first download
    extract: tuple[str, ...] | None = None
    alternatives: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return PurePosixPath(self.remote_path).name

    @property
    def candidates(self) -> tuple[str, ...]:
        return (self.remote_path, *self.alternatives)


@dataclass(frozen=True)
class Source:
    """A named download: a base URL, a destination folder under ROOT, its files.

    ``per_image`` sources (the LN-OpenImages val images) have no fixed file list: one request per
    image id named by ``ids_file`` (a path under ROOT), see :mod:`trecs_eval.data.download_images`.
    """

    name: str
    base_url: str
    folder: str
    files: tuple[RemoteFile, ...]
    description: str
    size: str = ""
    needed_by: str = ""
    ids_file: str | None = None

    @property
    def per_image(self) -> bool:
        return self.ids_file is not None


def _trecs(name: str, sha256: str | None = None, alternatives: tuple[str, ...] = ()) -> RemoteFile:
    return RemoteFile(f"sequence_labels/{name}", sha256, alternatives=alternatives)


_TRECS_FILES = (
    _trecs("val_coco.ids.txt", "6da218c73b0b9f47bc2c5d26f001dffb7f5c12cb123223f49286f5b4fba840d2"),
    _trecs("val_coco.words.txt", "5bc33d5442a72263945124a65b63caa27c822246844ed777933add9b92b8114d"),
    _trecs("val_coco.cleaned_tags.txt", "272d495b3eba1e69aecc0d4f9735bdb2b87ee2c97cfac0e6ba609be781a65738"),
    _trecs("val_oi.ids.txt", "90e59b6d2207bb2a21aec47e37ffa9f108dc90d21c1465b2e492c50ead8dff1f"),
    _trecs("val_oi.words.txt", "1402ddf2af0004fd0619beb3ca4da86a1332cc57ad87464a7fd1048e136d5aa1"),
    _trecs("train_coco.ids.txt", "3e6c40463e761092ed54584f9a4d79d2e58cfd9d4ed756cdf3ead86157983747"),
    # Not pinned: not at hand when this was written; the manifest records their sha256.
    _trecs("train_coco.words.txt"),
    _trecs("train_coco.tags.txt", alternatives=("sequence_labels/train_coco.cleaned_tags.txt",)),
)

_LN_TRAIN = tuple(RemoteFile(f"coco_train_localized_narratives-{k:05d}-of-{LN_COCO_TRAIN_SHARDS:05d}.jsonl")
                  for k in range(LN_COCO_TRAIN_SHARDS))

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("ln-coco-val", LN_BASE, "localized_narratives",
           (RemoteFile("coco_val_localized_narratives.jsonl"),),
           "Localized Narratives, COCO val2017", "~0.1 GB", "ln-coco (evaluation narratives)"),
    Source("ln-coco-train", LN_BASE, "localized_narratives/coco_train", _LN_TRAIN,
           "Localized Narratives, COCO train2017 (4 shards)", "~1.3 GB",
           "ln-coco, ln-openimages (caption bank of `retrieval`)"),
    Source("ln-openimages-val", LN_BASE, "localized_narratives",
           (RemoteFile("open_images_validation_localized_narratives.jsonl"),),
           "Localized Narratives, Open Images validation", "~0.4 GB", "ln-openimages"),
    Source("trecs-labels", TRECS_BASE, "trecs_sequence_labels", _TRECS_FILES,
           "TReCS word/tag sequence labels, val and train (google-research/trecs_image_generation)",
           "~0.1 GB", "ln-coco (gold tags, tagger), ln-openimages (subset ids, tagger)"),
    Source("trecs-images", TRECS_IMAGES_BASE, "trecs_released",
           (RemoteFile("trecs_images.tar", extract=()),),
           "the TReCS authors' released images, {image_id}_{annotator_id}.png", "~1.5 GB",
           "ln-coco, ln-openimages (system `trecs-released`)"),
    Source("coco-val2017", COCO_BASE, "coco", (RemoteFile("val2017.zip", extract=()),),
           "COCO 2017 validation images (5,000 JPEGs)", "0.8 GB", "ln-coco (reference images)"),
    Source("coco-train2017", COCO_BASE, "coco", (RemoteFile("train2017.zip", extract=()),),
           "COCO 2017 train images (118,287 JPEGs; optional: only pixels-using systems need them)",
           "18 GB (+18 GB unpacked)", "collage synthesizer of `trecs`, `retrieval`"),
    Source("coco-annotations", COCO_ANNOTATIONS_BASE, "coco",
           (RemoteFile("annotations_trainval2017.zip",
                       extract=("annotations/instances_", "annotations/captions_")),),
           "COCO 2017 instances and captions annotations", "0.25 GB", "mask bank (things)"),
    Source("coco-stuff-annotations", COCO_ANNOTATIONS_BASE, "coco",
           (RemoteFile("stuff_annotations_trainval2017.zip",
                       extract=("annotations/stuff_train2017.json", "annotations/stuff_val2017.json")),),
           "COCO-Stuff 2017 stuff annotations (JSON, RLE)", "1.1 GB", "mask bank (stuff)"),
    Source("coco-stuff-val2017", COCO_STUFF_BASE, "coco_stuff",
           (RemoteFile("stuffthingmaps_trainval2017.zip", extract=("val2017/",)),),
           "COCO-Stuff label maps (zip holds train+val; val2017/ is unpacked)", "0.7 GB",
           "ln-coco (gold segmentation: canvas metrics)"),
    Source("openimages-val-images", OPEN_IMAGES_BASE, f"openimages/{OPEN_IMAGES_SPLIT}", (),
           "the ~1,000 Open Images validation images that val_oi.ids.txt names, one request each",
           "~0.3 GB", "ln-openimages (reference images)",
           ids_file="trecs_sequence_labels/val_oi.ids.txt"),
)}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise UnknownNameError(f"unknown dataset {name!r}{suggest(name, SOURCES)}")
    return SOURCES[name]

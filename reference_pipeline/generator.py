"""The reference TReCS as a :class:`~trecs_eval.generation.protocol.Generator` named ``trecs``.

Per narrative: Tag (gold tags with ``tags="oracle"``, else a tagger trained on the train set's
TReCS label files) -> Retrieve (BM25 over bank label bags, or CLIP) -> Compose (trace-guided
canvas, :mod:`reference_pipeline.compose`) -> Synthesize (collage, spade, ccfpse or palette).

Parameters (all optional):

* ``tags``: ``"predicted"`` (default) or ``"oracle"`` (``EvalItem.gold_tags``);
* ``tagger``: any kind of :func:`reference_pipeline.tag.train_tagger`; default ``"fill"``: on
  toyworld when this was written, word accuracy with 60 / 300 training narratives was fill
  0.71 / 0.75, neural 0.40 / 0.90 (but ~20 s of training on 2 cores), hmm 0.22 / 0.13;
  ``tagger_seed`` (0) for taggers with random init;
* ``ignore_traces`` (bool): the ablation, masks keep their retrieved positions;
* ``synthesizer``: ``"collage"`` (default), ``"spade"`` (needs ``spade_checkpoint``), ``"ccfpse"``
  (the paper's CC-FPSE; needs ``ccfpse_checkpoint``), ``"palette"``;
* ``bank``: a mask bank folder made by ``trecs-eval pipeline build-bank`` (default: built from
  the train folder); ``tagger_checkpoint``: a tagger saved by ``trecs-eval pipeline
  train-tagger`` (default: trained on the train folder's label files). With both, no train
  folder is needed (e.g. LN-COCO with a COCO-Stuff bank);
* ``top_k`` (5) retrieved images; ``retriever``: ``"bm25"`` (default) or ``"clip"`` (needs
  ``clip_weights``, a checkpoint file or open_clip tag; ``clip_model`` default ViT-B-32).

Without ``bank``, the mask bank is built from ``train_dir/annotations.json`` + ``images/`` and
cached in ``work_dir`` under the sha256 of the annotation file; a trained tagger is cached
there too. Compose and collage use no randomness; the SPADE / CC-FPSE latent comes
from :func:`~trecs_eval.generation.protocol.item_seed`, so the same seed gives the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from reference_pipeline.bank import MaskBank, build_bank
from reference_pipeline.compose import compose, trace_sequences
from reference_pipeline.retrieve import BM25Retriever, Retriever, clip_retriever
from reference_pipeline.synthesize.collage import CollageSynthesizer
from reference_pipeline.synthesize.palette import synthesize_palette
from trecs_eval.data.evalset import EvalItem
from trecs_eval.data.narratives import points_for_words
from trecs_eval.data.sequence_labels import list_splits, read_sequence_labels
from trecs_eval.errors import ConfigError, InputError, suggest
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext, item_seed

log = logging.getLogger(__name__)

SYNTHESIZERS = ("collage", "spade", "ccfpse", "palette")
TAG_SOURCES = ("predicted", "oracle")
RETRIEVERS = ("bm25", "clip")


class _Tagger(Protocol):
    def tag(self, words: Sequence[str], allowed_labels: Collection[str] | None = None) -> list[str]: ...


@dataclass(frozen=True)
class TReCSParams:
    """Validated parameters of the ``trecs`` generator (see the module doc)."""

    tags: str = "predicted"
    tagger: str = "fill"
    tagger_seed: int = 0
    ignore_traces: bool = False
    synthesizer: str = "collage"
    top_k: int = 5
    spade_checkpoint: str | None = None
    ccfpse_checkpoint: str | None = None
    retriever: str = "bm25"
    clip_weights: str | None = None
    clip_model: str | None = None
    bank: str | None = None
    tagger_checkpoint: str | None = None

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> TReCSParams:
        fields = cls.__dataclass_fields__
        for key in params:
            if key not in fields:
                raise ConfigError(f"unknown trecs parameter {key!r}{suggest(key, fields)}")
        p = cls(**dict(params))
        choices = (("tags", p.tags, TAG_SOURCES), ("synthesizer", p.synthesizer, SYNTHESIZERS),
                   ("retriever", p.retriever, RETRIEVERS))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ConfigError(f"trecs: {name}={value!r} is not allowed{suggest(str(value), allowed)}")
        if not isinstance(p.ignore_traces, bool):
            raise ConfigError(f"trecs: ignore_traces must be true or false, got {p.ignore_traces!r}")
        if not isinstance(p.top_k, int) or p.top_k < 1:
            raise ConfigError(f"trecs: top_k must be an integer >= 1, got {p.top_k!r}")
        if p.synthesizer == "spade" and not p.spade_checkpoint:
            raise ConfigError("trecs: synthesizer='spade' needs spade_checkpoint=PATH (a SPADE checkpoint)")
        if p.synthesizer == "ccfpse" and not p.ccfpse_checkpoint:
            raise ConfigError("trecs: synthesizer='ccfpse' needs ccfpse_checkpoint=PATH (made by "
                              "`trecs-eval pipeline convert-ccfpse`)")
        if p.retriever == "clip" and not p.clip_weights:
            raise ConfigError("trecs: retriever='clip' needs clip_weights=PATH (open_clip weights)")
        return p


def load_or_build_bank(train_dir: Path, work_dir: Path | None) -> MaskBank:
    """Mask bank of ``train_dir`` (cached in ``work_dir/trecs_bank/<sha256 of annotations>[:16]``)."""
    annotations = train_dir / "annotations.json"
    if not annotations.is_file():
        raise InputError("the trecs generator needs a COCO-format annotations.json in the train folder",
                         str(annotations))
    if work_dir is None:
        return build_bank(annotations, train_dir / "images")
    digest = hashlib.sha256(annotations.read_bytes()).hexdigest()
    cache = Path(work_dir) / "trecs_bank" / digest[:16]
    if (cache / "bank.json").is_file():
        bank = MaskBank.load(cache)
        if bank.source_sha256 == digest and bank.images_dir == (train_dir / "images").resolve():
            return bank
    log.info("trecs: building the mask bank of %s into %s", annotations, cache)
    return build_bank(annotations, train_dir / "images", cache)


def tagger_from_train_dir(name: str, train_dir: Path, seed: int = 0, work_dir: Path | None = None) -> _Tagger:
    """Trains tagger ``name`` (seeded) on every split in ``train_dir/sequence_labels/``.

    With ``work_dir`` the trained tagger is cached there, keyed by kind, seed and the sha256 of
    the label files, so a second generator (e.g. the no-trace ablation) does not retrain.
    """
    from reference_pipeline.tag import TAGGER_KINDS, load_tagger, save_tagger, train_tagger

    if name not in TAGGER_KINDS:
        raise ConfigError(f"trecs: unknown tagger {name!r}{suggest(name, TAGGER_KINDS)}")
    label_dir = train_dir / "sequence_labels"
    splits = list_splits(label_dir) if label_dir.is_dir() else []
    words: list[Sequence[str]] = []
    tags: list[Sequence[str]] = []
    digest = hashlib.sha256()
    for split in splits:
        labels = read_sequence_labels(label_dir, split)
        if labels.tags is not None:
            words.extend(labels.words)
            tags.extend(labels.tags)
            digest.update(repr((labels.words, labels.tags)).encode())
    if not words:
        raise InputError("no tagged TReCS label files to train the tagger on", str(label_dir),
                         hint="use tags='oracle' or add {split}.ids/words/tags.txt files")
    cache = (Path(work_dir) / "trecs_tagger" / f"{name}-seed{seed}-{digest.hexdigest()[:16]}.pt"
             if work_dir is not None else None)
    if cache is not None and cache.is_file():
        return load_tagger(cache)
    log.info("trecs: training the %r tagger on %d narratives", name, len(words))
    tagger = train_tagger(name, words, tags, seed=seed)  # type: ignore[arg-type]
    if cache is not None:
        save_tagger(tagger, cache)  # type: ignore[arg-type]
    return tagger


def make_tagger(kind: str, seed: int, checkpoint: str | None, context: GeneratorContext,
                system: str) -> _Tagger:
    """The word tagger of a system using predicted tags: ``checkpoint`` (a tagger saved by
    ``trecs-eval pipeline train-tagger``) or ``kind`` trained on the context's train folder."""
    if checkpoint:
        from reference_pipeline.tag import load_tagger

        return load_tagger(checkpoint)
    if context.train_dir is None:
        raise ConfigError(f"the {system} generator needs a train folder for tagger training",
                          hint="set dataset.train_dir, or params tagger_checkpoint=FILE, or tags='oracle'")
    return tagger_from_train_dir(kind, Path(context.train_dir), seed, context.work_dir)


def item_tags(item: EvalItem, source: str, tagger: _Tagger | None) -> list[str]:
    """Gold tags (``source="oracle"``) or ``tagger``'s prediction for the item's words."""
    words = item.narrative.words
    if source == "oracle":
        if item.gold_tags is None or len(item.gold_tags) != len(words):
            raise InputError(f"item {item.item_id}: tags='oracle' needs one gold tag per word "
                             f"({len(words)} words)", field="gold_tags")
        return list(item.gold_tags)
    assert tagger is not None
    return tagger.tag(words)


class TReCSGenerator:
    """Tag -> Retrieve -> Compose -> Synthesize; returns the image, the label canvas and the instances."""

    name: ClassVar[str] = "trecs"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=True, returns_canvas=True)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        self.params = TReCSParams.from_mapping(params)
        self.context = context
        # Instance attribute on purpose: the ablation does not read traces.
        self.capabilities = Capabilities(uses_traces=not self.params.ignore_traces,  # type: ignore[misc]
                                          returns_canvas=True)
        p = self.params
        self.bank = MaskBank.load(p.bank) if p.bank else load_or_build_bank(self._train_dir("the mask bank"),
                                                                            context.work_dir)
        self.retriever: Retriever = (clip_retriever(self.bank, p.clip_weights, p.clip_model, context.device)
                                     if p.retriever == "clip" else BM25Retriever(self.bank))
        self.tagger = (make_tagger(p.tagger, p.tagger_seed, p.tagger_checkpoint, context, "trecs")
                       if p.tags == "predicted" else None)
        self.collage = CollageSynthesizer(self.bank)
        self.network: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None = None
        if self.params.synthesizer == "spade":
            from reference_pipeline.synthesize.spade import SpadeSynthesizer

            self.network = SpadeSynthesizer(self.params.spade_checkpoint, context.device)
        elif self.params.synthesizer == "ccfpse":
            from reference_pipeline.synthesize.ccfpse import CcfpseSynthesizer

            self.network = CcfpseSynthesizer(self.params.ccfpse_checkpoint, context.device)
        # a network synthesizer or CLIP retrieval runs on the device: its pixels and choices follow it
        uses_device = self.network is not None or p.retriever == "clip"
        self.numeric_identity = {"device": context.device} if uses_device else {}

    def _train_dir(self, purpose: str) -> Path:
        if self.context.train_dir is None:
            raise ConfigError(f"the trecs generator needs a train folder for {purpose}",
                              hint="set dataset.train_dir, or params bank=DIR and tagger_checkpoint=FILE")
        return Path(self.context.train_dir)

    def tags_for(self, item: EvalItem) -> list[str]:
        """Gold tags (oracle) or the tagger's prediction for the item's words."""
        return item_tags(item, self.params.tags, self.tagger)

    def generate_one(self, item: EvalItem, seed: int) -> Generation:
        size = (self.context.image_size, self.context.image_size)
        words = item.narrative.words
        tags = self.tags_for(item)
        ranking = self.retriever.rank(words, tags)
        sequences = trace_sequences(tags, points_for_words(item.narrative, words))
        comp = compose(self.bank, sequences, ranking, size, self.params.top_k, self.params.ignore_traces)
        if self.params.synthesizer == "collage":
            image = self.collage(comp)
        elif self.params.synthesizer == "palette":
            image = synthesize_palette(comp.labels)
        else:
            assert self.network is not None
            image = self.network(comp.labels, comp.instances, item_seed(seed, item.item_id))
        return Generation(image=image, canvas=comp.labels, instances=comp.instances)

    def describe(self, items: Sequence[EvalItem]) -> dict[str, Any]:
        """Provenance for ``results.json``: the synthesizer and, for a network, its checkpoint's
        sha256, config, dtype and seed policy (the latent, when it has one, from the item seed)."""
        p = self.params
        info: dict[str, Any] = {"synthesizer": p.synthesizer, "tags": p.tags, "retriever": p.retriever}
        if self.network is not None:
            from dataclasses import asdict

            from trecs_eval.features.identity import sha256_file

            checkpoint = str(p.spade_checkpoint if p.synthesizer == "spade" else p.ccfpse_checkpoint)
            config = self.network.model.config  # type: ignore[attr-defined]
            seeds = ("z ~ N(0, 1) from torch.Generator().manual_seed(item_seed(run seed, item_id))"
                     if config.use_vae else "none: the network is deterministic")
            info.update(model=checkpoint, model_sha256=sha256_file(checkpoint), model_config=asdict(config),
                        dtype="float32", seed_policy=seeds)
        return info

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        """One Generation per item, in order; an item's output does not depend on batching."""
        return [self.generate_one(item, seed) for item in items]

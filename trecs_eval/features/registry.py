"""The feature-extractor registry: every feature space a metric can ask for, by name.

An extractor turns image files into features, has an :class:`ExtractorIdentity` (weights
sha256, layers, preprocessing, library versions) and reads/writes the content-addressed
:class:`FeatureCache` under that identity, so an image's features are computed at most once per
extractor, whatever the number of metrics, systems or runs that use them. A run builds each
extractor once (:class:`FeatureExtractors`) and asks each one once per image set.

Built-ins: ``inception`` (FID/KID/IS), ``clip`` (CLIPScore, R-precision; also embeds narratives),
``dinov2`` (FD-DINOv2), ``clip_cmmd`` (CLIP ViT-L/14@336 for CMMD), and the segmenters
``toyworld_oracle`` (gold maps of known toyworld images) and ``mask2former`` (a local
``transformers`` checkpoint), which give COCO-Stuff label maps (:class:`LabelMaps`).
Third-party extractors register through the ``trecs_eval.extractors`` entry-point group with a
factory ``(settings: ExtractorSettings, cache: FeatureCache) -> Extractor``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.registry import Registry

if TYPE_CHECKING:
    from trecs_eval.data.narratives import Narrative


@dataclass(frozen=True)
class ExtractorSettings:
    """How features are made. Defaults: literature FID (``tf1``), CLIP ViT-B-32/openai.

    ``options`` holds settings of extractors that are not built in (plug-ins read their own keys).
    """

    device: str = "auto"
    batch_size: int = 32
    num_workers: int = 1  # decode is ~50x faster than the model on CPU: one worker suffices
    inception_weights: str | None = None
    preprocessing: str = "tf1"
    inception_layout: str = "nchw"  # "nhwc": the faster opt-in (see features.inception.memory_format)
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    text_policy: str = "utterances"
    uncalibrated: bool = False
    seed: int = 0  # seed of the calibrated random weights (uncalibrated mode only)
    progress: bool = True
    dinov2_arch: str = "vitl14"
    dinov2_weights: str | None = None
    cmmd_clip_model: str = "ViT-L-14-336"
    cmmd_clip_pretrained: str = "openai"
    segmenter_model: str | None = None  # a local Mask2Former checkpoint directory
    toyworld_roots: tuple[str, ...] = ()  # toyworld folders the oracle segmenter knows
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Extractor(Protocol):
    """A feature space: ``extract(paths)`` gives features in the order of ``paths``."""

    identity: ExtractorIdentity

    def extract(self, paths: Sequence[str | Path]) -> Any:
        """Features of the image files (cached by content under ``identity``)."""
        ...

    def arrays(self, features: Any) -> dict[str, np.ndarray]:
        """Per-item arrays of ``features`` for ``features/{system}.npz`` (``{}``: none)."""
        ...


ExtractorFactory = Callable[[ExtractorSettings, FeatureCache], Extractor]

EXTRACTORS: Registry[ExtractorFactory] = Registry("feature extractor", "trecs_eval.extractors")


class InceptionSpace:
    """``inception``: pool3 (2048-d) and logits (1008-d) of one forward pass (FID, KID, IS)."""

    def __init__(self, settings: ExtractorSettings, cache: FeatureCache) -> None:
        from trecs_eval.features.inception import InceptionExtractor

        s = settings
        self.extractor = InceptionExtractor(
            inception_weights=s.inception_weights, uncalibrated=s.uncalibrated, seed=s.seed,
            preprocessing=s.preprocessing, device=s.device, batch_size=s.batch_size,
            num_workers=s.num_workers, progress=s.progress, cache=cache, layout=s.inception_layout)
        self.identity = self.extractor.identity

    def extract(self, paths: Sequence[str | Path]) -> Any:
        return self.extractor.extract(paths)

    def arrays(self, features: Any) -> dict[str, np.ndarray]:
        return {"inception_pool": features.pool, "inception_logits": features.logits}


class ClipSpace:
    """``clip``: L2-normalized open_clip image embeddings; :meth:`texts` embeds narratives."""

    def __init__(self, settings: ExtractorSettings, cache: FeatureCache) -> None:
        from trecs_eval.features.clip import shared_clip_embedder

        s = settings  # one model for this space and clip_crops
        self.embedder = shared_clip_embedder(
            cache, model=s.clip_model, pretrained=s.clip_pretrained, device=s.device,
            text_policy=s.text_policy, uncalibrated=s.uncalibrated, seed=s.seed, batch_size=s.batch_size,
            progress=s.progress)
        # the text identity (with the text policy): what results.json has always recorded
        self.identity = self.embedder.identity

    def extract(self, paths: Sequence[str | Path]) -> np.ndarray:
        return self.embedder.image_embeddings(paths)

    def texts(self, narratives: Sequence[Narrative]) -> Any:
        return self.embedder.text_embeddings(narratives)

    def arrays(self, features: np.ndarray) -> dict[str, np.ndarray]:
        return {"clip_image": features}


class ClipCmmdSpace:
    """``clip_cmmd``: CMMD's CLIP (``cmmd_clip_model``, default ViT-L-14-336/openai) image embeddings."""

    def __init__(self, settings: ExtractorSettings, cache: FeatureCache) -> None:
        from trecs_eval.features.cmmd_clip import cmmd_embedder

        s = settings
        self.embedder = cmmd_embedder(model=s.cmmd_clip_model, pretrained=s.cmmd_clip_pretrained,
                                      device=s.device, uncalibrated=s.uncalibrated, seed=s.seed, cache=cache,
                                      batch_size=s.batch_size, progress=s.progress)
        self.identity = self.embedder.image_identity

    def extract(self, paths: Sequence[str | Path]) -> np.ndarray:
        return self.embedder.image_embeddings(paths)

    def arrays(self, features: np.ndarray) -> dict[str, np.ndarray]:
        return {"clip_cmmd_image": features}


class DinoV2Space:
    """``dinov2``: DINOv2 CLS features (``dinov2_arch``, default ViT-L/14, dgm-eval preprocessing)."""

    def __init__(self, settings: ExtractorSettings, cache: FeatureCache) -> None:
        from trecs_eval.features.dinov2 import DinoV2Extractor

        s = settings
        self.extractor = DinoV2Extractor(arch=s.dinov2_arch, weights=s.dinov2_weights,  # a file wins
                                         uncalibrated=s.uncalibrated and s.dinov2_weights is None,
                                         seed=s.seed, device=s.device, batch_size=s.batch_size, cache=cache,
                                         progress=s.progress)
        self.identity = self.extractor.identity

    def extract(self, paths: Sequence[str | Path]) -> Any:
        return self.extractor.extract(paths)

    def arrays(self, features: Any) -> dict[str, np.ndarray]:
        return {"dinov2": features.features}


@dataclass(frozen=True)
class LabelMaps:
    """A segmenter's COCO-Stuff label maps (H×W uint8, in path order) and its label space
    (``output_ids``, ``canonical``: what :func:`trecs_eval.metrics.trace_hit.trace_hit_rate` needs)."""

    maps: list[np.ndarray]
    label_space: Any


class SegmenterSpace:
    """A segmenter as a feature space: label maps, cached by image content and segmenter identity."""

    def __init__(self, segmenter: Any, cache: FeatureCache) -> None:
        self.segmenter, self.cache = segmenter, cache
        self.identity = segmenter.identity

    def extract(self, paths: Sequence[str | Path]) -> LabelMaps:
        from trecs_eval.features.segmenter import segment_images

        return LabelMaps(segment_images(self.segmenter, paths, self.cache), self.segmenter)

    def arrays(self, features: LabelMaps) -> dict[str, np.ndarray]:
        return {}  # maps are images, not per-item vectors: re-made from the cache when needed


def toyworld_oracle(settings: ExtractorSettings, cache: FeatureCache) -> SegmenterSpace:
    """``toyworld_oracle``: the gold map of every image of ``toyworld_roots`` (a perfect segmenter
    for real toyworld images, ``unlabeled`` for any other image)."""
    from trecs_eval.errors import ConfigError
    from trecs_eval.features.segmenter import OracleSegmenter

    pairs = [(image, Path(root) / "segmentation" / image.name, False)
             for root in settings.toyworld_roots for sub in ("images", "images_shifted")
             for image in sorted((Path(root) / sub).glob("*.png"))
             if (Path(root) / "segmentation" / image.name).is_file()]
    if not pairs:
        raise ConfigError("the toyworld_oracle segmenter knows no image: it needs a toyworld dataset",
                          hint="use segmenter = \"mask2former\" on other data")
    return SegmenterSpace(OracleSegmenter(pairs), cache)


def mask2former(settings: ExtractorSettings, cache: FeatureCache) -> SegmenterSpace:
    """``mask2former``: a local COCO-panoptic Mask2Former directory (``segmenter_model``)."""
    from trecs_eval.errors import MissingWeightsError
    from trecs_eval.features.segmenter import Mask2FormerSegmenter

    if settings.segmenter_model is None:
        raise MissingWeightsError("no segmenter checkpoint given",
                                  hint="set extractors.segmenter_model (or --segmenter-model) to a local "
                                       "Mask2Former COCO-panoptic directory saved with save_pretrained()")
    return SegmenterSpace(Mask2FormerSegmenter(settings.segmenter_model, device=settings.device), cache)


def clip_crops(settings: ExtractorSettings, cache: FeatureCache) -> Extractor:
    """``clip_crops``: crops of images and short texts in the ``clip`` space (trace-local CLIP)."""
    from trecs_eval.features.clip_crops import ClipCropSpace

    return ClipCropSpace(ClipSpace(settings, cache).embedder)


BUILTIN_EXTRACTORS: dict[str, ExtractorFactory] = {
    "inception": InceptionSpace, "clip": ClipSpace, "clip_cmmd": ClipCmmdSpace, "dinov2": DinoV2Space,
    "toyworld_oracle": toyworld_oracle, "mask2former": mask2former, "clip_crops": clip_crops}


def register_builtins() -> None:
    """Register the built-in extractors (idempotent)."""
    for name, factory in BUILTIN_EXTRACTORS.items():
        EXTRACTORS.register(name, factory)


register_builtins()


class FeatureExtractors:
    """The extractors of one run or command, made on first use and kept; all share one cache."""

    def __init__(self, settings: ExtractorSettings, cache: FeatureCache | None = None) -> None:
        self.settings = settings
        self.cache = cache if cache is not None else FeatureCache()
        self._built: dict[str, Extractor] = {}

    def get(self, space: str) -> Extractor:
        """The extractor registered as ``space`` (built once; unknown names get a suggestion)."""
        if space not in self._built:
            self._built[space] = EXTRACTORS.get(space)(self.settings, self.cache)
        return self._built[space]

    def extract(self, space: str, paths: Sequence[str | Path]) -> Any:
        return self.get(space).extract(paths)

    @property
    def inception_extractor(self) -> Any:
        return self.get("inception").extractor  # type: ignore[attr-defined]

    @property
    def clip(self) -> Any:
        """The ``ClipEmbedder`` of the ``clip`` space."""
        return self.get("clip").embedder  # type: ignore[attr-defined]

    def inception(self, paths: Sequence[Any]) -> Any:
        return self.extract("inception", paths)

    def clip_images(self, paths: Sequence[Any]) -> np.ndarray:
        return self.extract("clip", paths)

    def clip_texts(self, narratives: Sequence[Narrative]) -> Any:
        return self.get("clip").texts(narratives)  # type: ignore[attr-defined]

    def identities(self) -> dict[str, dict[str, Any]]:
        """Identities of the extractors used so far, for the results file."""
        return {name: ex.identity.to_dict() for name, ex in self._built.items()}

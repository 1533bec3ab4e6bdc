"""The feature-extractor registry: every feature space a metric can ask for, by name.

An extractor turns image files into features, has an :class:`ExtractorIdentity` (weights
sha256, layers, preprocessing, library versions) and reads/writes the content-addressed
:class:`FeatureCache` under that identity, so an image's features are computed at most once per
extractor, whatever the number of metrics, systems or runs that use them. A run builds each
extractor once (:class:`FeatureExtractors`) and asks each one once per image set.

Built-ins: ``inception`` (FID/KID/IS), ``clip`` (CLIPScore, R-precision; also embeds narratives).
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
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    text_policy: str = "utterances"
    uncalibrated: bool = False
    seed: int = 0  # seed of the calibrated random weights (uncalibrated mode only)
    progress: bool = True
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
            num_workers=s.num_workers, progress=s.progress, cache=cache)
        self.identity = self.extractor.identity

    def extract(self, paths: Sequence[str | Path]) -> Any:
        return self.extractor.extract(paths)

    def arrays(self, features: Any) -> dict[str, np.ndarray]:
        return {"inception_pool": features.pool, "inception_logits": features.logits}


class ClipSpace:
    """``clip``: L2-normalized open_clip image embeddings; :meth:`texts` embeds narratives."""

    def __init__(self, settings: ExtractorSettings, cache: FeatureCache) -> None:
        from trecs_eval.features.clip import ClipEmbedder

        s = settings
        self.embedder = ClipEmbedder(model=s.clip_model, pretrained=s.clip_pretrained, device=s.device,
                                     text_policy=s.text_policy, uncalibrated=s.uncalibrated, seed=s.seed,
                                     cache=cache, batch_size=s.batch_size, progress=s.progress)
        # the text identity (with the text policy): what results.json has always recorded
        self.identity = self.embedder.identity

    def extract(self, paths: Sequence[str | Path]) -> np.ndarray:
        return self.embedder.image_embeddings(paths)

    def texts(self, narratives: Sequence[Narrative]) -> Any:
        return self.embedder.text_embeddings(narratives)

    def arrays(self, features: np.ndarray) -> dict[str, np.ndarray]:
        return {"clip_image": features}


BUILTIN_EXTRACTORS: dict[str, ExtractorFactory] = {"inception": InceptionSpace, "clip": ClipSpace}


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

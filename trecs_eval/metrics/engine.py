"""The metrics engine facade: settings -> extractors (lazy, cached) -> metric results.

    settings = ExtractorSettings(inception_weights="w.pth", device="cpu")
    extractors = FeatureExtractors(settings)
    gen, ref = extractors.inception(gen_paths), extractors.inception(ref_paths)
    results = image_metrics(gen, ref, ["fid", "kid", "is"], seed=0)

Image metrics (FID, KID, IS) share ONE Inception forward pass per image; text metrics
(CLIPScore, CLIP-S, R-precision) delegate to :mod:`trecs_eval.features.clip` and the CLIP
metric modules. CIs of FID/KID/IS are seeded 95 % percentile bootstraps that resample the
generated images with the reference fixed; each resample recomputes the whole metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trecs_eval.data.narratives import Narrative
from trecs_eval.errors import ConfigError, UnknownNameError, suggest
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.inception import InceptionExtractor, InceptionFeatures
from trecs_eval.metrics import fid, inception_score, kid, resample
from trecs_eval.metrics.bootstrap import bootstrap_statistic_ci
from trecs_eval.metrics.types import MetricResult

IMAGE_METRICS = ("fid", "kid", "is")
TEXT_METRICS = ("clip_score", "clip_s", "r_precision")
ALL_METRICS = IMAGE_METRICS + TEXT_METRICS
# Each FID resample is a full FID (an n x n eigenproblem plus an n x d x d product, ~0.3 s at
# n = 1000 on 2 cores): 100 resamples cost ~30 s and place the 2.5/97.5 % percentiles within
# a few % of their 1000-resample values; raise it for publication tables.
DEFAULT_IMAGE_BOOTSTRAP = 100
DEFAULT_ALPHA = 0.05


def parse_metric_names(names: str | Sequence[str]) -> list[str]:
    """``"fid,kid"`` or a list -> validated names (order kept, duplicates dropped)."""
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    items = [n for n in items if n]
    if not items:
        raise ConfigError(f"no metrics given; available: {', '.join(ALL_METRICS)}")
    for name in items:
        if name not in ALL_METRICS:
            raise UnknownNameError(f"unknown metric {name!r}{suggest(name, ALL_METRICS)}")
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class ExtractorSettings:
    """How features are made. Defaults: literature FID (``tf1``), CLIP ViT-B-32/openai."""

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


class FeatureExtractors:
    """Extractors made on first use and kept; all share one feature cache."""

    def __init__(self, settings: ExtractorSettings, cache: FeatureCache | None = None) -> None:
        self.settings = settings
        self.cache = cache if cache is not None else FeatureCache()
        self._inception: InceptionExtractor | None = None
        self._clip: Any = None

    @property
    def inception_extractor(self) -> InceptionExtractor:
        if self._inception is None:
            s = self.settings
            self._inception = InceptionExtractor(
                inception_weights=s.inception_weights, uncalibrated=s.uncalibrated, seed=s.seed,
                preprocessing=s.preprocessing, device=s.device, batch_size=s.batch_size,
                num_workers=s.num_workers, progress=s.progress, cache=self.cache)
        return self._inception

    @property
    def clip(self) -> Any:
        """The CLIP engineer's ``ClipEmbedder`` (imported lazily: open_clip is slow to import)."""
        if self._clip is None:
            from trecs_eval.features.clip import ClipEmbedder

            s = self.settings
            self._clip = ClipEmbedder(model=s.clip_model, pretrained=s.clip_pretrained,
                                      device=s.device, text_policy=s.text_policy,
                                      uncalibrated=s.uncalibrated, seed=s.seed, cache=self.cache,
                                      batch_size=s.batch_size, progress=s.progress)
        return self._clip

    def inception(self, paths: Sequence[Any]) -> InceptionFeatures:
        return self.inception_extractor.extract(paths)

    def clip_images(self, paths: Sequence[Any]) -> np.ndarray:
        return self.clip.image_embeddings(paths)

    def clip_texts(self, narratives: Sequence[Narrative]) -> Any:
        return self.clip.text_embeddings(narratives)

    def identities(self) -> dict[str, dict[str, Any]]:
        """Identities of the extractors used so far, for the results file."""
        found = {}
        if self._inception is not None:
            found["inception"] = self._inception.identity.to_dict()
        if self._clip is not None:
            found["clip"] = self._clip.identity.to_dict()
        return found


def _ci(n: int, statistic: Any, n_bootstrap: int, seed: int, alpha: float) -> tuple[float, float]:
    if n_bootstrap <= 0:
        return math.nan, math.nan
    return bootstrap_statistic_ci(n, statistic, n_bootstrap, seed, alpha)


def _fid(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics, seed: int,
         n_bootstrap: int, alpha: float) -> MetricResult:
    if isinstance(ref, ReferenceStatistics):
        ref_stats = ref.stats
        value, info = fid.statistics_to_fid(fid.features_to_statistics(gen.pool), ref_stats)
    else:
        value, info = fid.features_to_fid(gen.pool, ref.pool)
        ref_stats = fid.features_to_statistics(ref.pool)
    low, high = math.nan, math.nan
    if n_bootstrap > 0 and isinstance(ref, ReferenceStatistics):
        against = fid.FidAgainstReference(ref_stats)  # a d x d eigh once, then one per resample
        low, high = _ci(len(gen), lambda idx: against(gen.pool[idx]), n_bootstrap, seed, alpha)
    elif n_bootstrap > 0:
        # Reference features at hand: the exact factorised form, an n x n eigenproblem per resample
        # instead of an n x d x d product (benchmarks/bench_harness.py: 16x at n = 300).
        statistic = resample.fid_statistic(gen.pool, resample.ReferenceSet(ref.pool))
        low, high = _ci(len(gen), statistic, n_bootstrap, seed, alpha)
    return MetricResult("fid", value, fid.INFO.higher_is_better, len(gen), low, high, seed=seed,
                        warnings=info.warnings,
                        params={"method": info.method, "reference_n": ref_stats.n,
                                "negative_eigenvalues_clipped": info.negative_eigenvalues})


@dataclass(frozen=True)
class ReferenceStatistics:
    """Saved FID statistics with the identity of the extractor that made them."""

    stats: fid.GaussianStatistics
    identity: ExtractorIdentity
    source: str

    @classmethod
    def load(cls, path: str) -> ReferenceStatistics:
        stats, identity = fid.load_statistics(path)
        return cls(stats, identity, str(path))


def _kid(gen: InceptionFeatures, ref: InceptionFeatures, seed: int, n_bootstrap: int,
         alpha: float, n_subsets: int) -> MetricResult:
    point = kid.KidKernels(gen.pool, ref.pool).kid(seed=seed, n_subsets=n_subsets)
    # Resamples use one unbiased MMD^2 against the whole reference set (exact and ~15x cheaper than
    # re-drawing subsets per resample; the same statistic as the point estimate when n = m <= 1000).
    statistic = resample.kid_statistic(gen.pool, resample.ReferenceSet(ref.pool))
    low, high = _ci(len(gen), statistic, n_bootstrap, seed, alpha)
    return MetricResult("kid", point.mean, kid.INFO.higher_is_better, len(gen), low, high,
                        std=point.std, seed=seed,
                        params={"n_subsets": n_subsets, "subset_size": point.subset_size,
                                "ci_resamples": "whole reference set"})


def _is(gen: InceptionFeatures, seed: int, n_bootstrap: int, alpha: float, splits: int
        ) -> MetricResult:
    point = inception_score.logits_to_inception_score(gen.logits, seed=seed, splits=splits)
    low, high = _ci(len(gen), lambda idx: inception_score.logits_to_inception_score(
        gen.logits[idx], seed=seed, splits=splits).mean, n_bootstrap, seed, alpha)
    return MetricResult("is", point.mean, inception_score.INFO.higher_is_better, len(gen), low,
                        high, std=point.std, seed=seed, params={"splits": splits})


def image_metrics(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics | None,
                  names: Sequence[str], *, seed: int, n_bootstrap: int = DEFAULT_IMAGE_BOOTSTRAP,
                  alpha: float = DEFAULT_ALPHA, kid_subsets: int = kid.DEFAULT_SUBSETS,
                  is_splits: int = inception_score.DEFAULT_SPLITS, system: str = ""
                  ) -> list[MetricResult]:
    """FID / KID / IS of ``gen`` (against ``ref`` for FID and KID), stamped with the identity.

    ``ref`` may be saved statistics (FID only; KID then raises ConfigError). ``n_bootstrap=0``
    gives no CI (NaN bounds).
    """
    results = []
    for name in parse_metric_names(list(names)):
        if name == "is":
            results.append(_is(gen, seed, n_bootstrap, alpha, is_splits))
        elif name in ("fid", "kid"):
            if ref is None:
                raise ConfigError(f"{name} needs a reference (--reference DIR or STATS.npz)")
            source = ref.source if isinstance(ref, ReferenceStatistics) else "reference features"
            fid.check_identity(gen.identity, ref.identity, source)
            if name == "fid":
                results.append(_fid(gen, ref, seed, n_bootstrap, alpha))
            elif isinstance(ref, ReferenceStatistics):
                raise ConfigError("KID needs reference images, not saved statistics",
                                  hint="pass --reference DIR, or drop kid from --metrics")
            else:
                results.append(_kid(gen, ref, seed, n_bootstrap, alpha, kid_subsets))
    identity = gen.identity.to_dict()
    status = "uncalibrated" if gen.identity.uncalibrated else "ok"
    images = gen.report.to_dict()
    return [replace(m, system=system, extractor=identity, status=status,
                    params={**m.params, "n_bootstrap": n_bootstrap, "alpha": alpha,
                            "preprocessing": gen.identity.preprocessing, "images": images})
            for m in results]


def text_metrics(extractors: FeatureExtractors, image_paths: Sequence[Any],
                 narratives: Sequence[Narrative], names: Sequence[str], *, seed: int,
                 n_bootstrap: int = 1000, alpha: float = DEFAULT_ALPHA, system: str = ""
                 ) -> list[MetricResult]:
    """CLIPScore / CLIP-S / R-precision; ``image_paths[i]`` shows ``narratives[i]``."""
    from trecs_eval.metrics.clip_score import compute_clip_score
    from trecs_eval.metrics.r_precision import compute_r_precision

    if len(image_paths) != len(narratives):
        raise ConfigError(f"{len(image_paths)} images for {len(narratives)} narratives")
    texts = extractors.clip_texts(narratives)
    images = extractors.clip_images(image_paths)
    ids = [n.item_id for n in narratives]
    common = {"seed": seed, "n_resamples": n_bootstrap, "alpha": alpha, "system": system,
              "extractor": extractors.clip.identity.to_dict(), "text_info": texts.info()}
    results = []
    for name in parse_metric_names(list(names)):
        if name in ("clip_score", "clip_s"):
            results.append(compute_clip_score(ids, images, texts.embeddings, name=name, **common))
        elif name == "r_precision":
            found = compute_r_precision(ids, [n.image_id for n in narratives], images,
                                        texts.embeddings, **common)
            results.append(found.metric)
    return results

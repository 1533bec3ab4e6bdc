"""The metrics engine facade: settings -> extractors (lazy, cached) -> metric results.

    settings = ExtractorSettings(inception_weights="w.pth", device="cpu")
    extractors = FeatureExtractors(settings)
    gen, ref = extractors.inception(gen_paths), extractors.inception(ref_paths)
    results = image_metrics(gen, ref, ["fid", "kid", "is"], seed=0)

Image metrics (FID, KID, IS) share ONE Inception forward pass per image; text metrics
(CLIPScore, CLIP-S, R-precision) delegate to :mod:`trecs_eval.features.clip` and the CLIP
metric modules. Intervals of FID/KID/IS/FID_inf come from :mod:`trecs_eval.metrics.intervals`
(delta method for FID and KID, t over splits for IS), each stating the quantity it covers.
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
from trecs_eval.metrics import fid, fid_inf, inception_score, intervals, kid
from trecs_eval.metrics.types import MetricResult

IMAGE_METRICS = ("fid", "kid", "is", "fid_inf")
TEXT_METRICS = ("clip_score", "clip_s", "r_precision")
ALL_METRICS = IMAGE_METRICS + TEXT_METRICS
# n_bootstrap > 0 asks for intervals (0: none). FID/KID/IS/FID_inf intervals are analytic
# (trecs_eval.metrics.intervals) and do not resample; the number is recorded in params.
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


def _fid(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics, seed: int,
         n_bootstrap: int, alpha: float) -> MetricResult:
    """FID with a delta-method interval for "FID at this n" (see :mod:`trecs_eval.metrics.intervals`)."""
    if isinstance(ref, ReferenceStatistics):
        ref_stats = ref.stats
        value, info = fid.statistics_to_fid(fid.features_to_statistics(gen.pool), ref_stats)
        covers = "FID at this n against the saved reference statistics (held fixed)"
    else:
        value, info = fid.features_to_fid(gen.pool, ref.pool)
        ref_stats = fid.features_to_statistics(ref.pool)
        covers = "FID at this (n, m): the estimator's expectation; FID is biased upwards at finite n"
    low = high = math.nan
    if n_bootstrap > 0:  # 0 keeps its meaning "no interval"; the delta method needs no resamples
        influence = (intervals.fid_influence_fixed_reference(gen.pool, ref_stats.mu, ref_stats.sigma)
                     if isinstance(ref, ReferenceStatistics) else intervals.fid_influence(gen.pool, ref.pool))
        half = intervals.z_quantile(alpha) * math.sqrt(
            intervals.delta_variance(influence, np.arange(len(gen)), len(gen)))
        low, high = value - half, value + half
    return MetricResult("fid", value, fid.INFO.higher_is_better, len(gen), low, high, seed=seed,
                        warnings=info.warnings,
                        params={"method": info.method, "reference_n": ref_stats.n,
                                "negative_eigenvalues_clipped": info.negative_eigenvalues,
                                "interval": "delta method (influence functions), symmetric",
                                "interval_covers": covers})


def _fid_inf(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics, seed: int,
             alpha: float, n_points: int, min_fraction: float) -> MetricResult:
    """FID_inf (Chong & Forsyth 2020) and its interval for the population FID (:mod:`fid_inf`)."""
    reference = ref.stats if isinstance(ref, ReferenceStatistics) else ref.pool
    found = fid_inf.features_to_fid_inf(gen.pool, reference, seed=seed, alpha=alpha, n_points=n_points,
                                        min_fraction=min_fraction)
    warnings = found.warnings + (() if found.reference_extrapolated else (
        "FID_inf against saved statistics: only the generated side is extrapolated; the reference's "
        "own finite-sample bias remains",))
    return MetricResult("fid_inf", found.value, fid_inf.INFO.higher_is_better, len(gen), found.low,
                        found.high, seed=seed, warnings=warnings,
                        params={"sizes": list(found.sizes), "fids": list(found.fids), "slope": found.slope,
                                "se_sampling": found.se_sampling, "se_fit": found.se_fit,
                                "n_points": n_points, "min_fraction": min_fraction,
                                "interval_covers": "the population FID (n, m -> infinity)"})


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
    """KID = the unbiased MMD² over all n x m pairs, with a delta-method interval for it.

    Value and interval are one statistic. It equals torch-fidelity's subset-averaged KID when
    n = m <= 1000 (every subset is the whole set) and has the same expectation otherwise, with
    less variance; the subset mean and std are kept in ``params`` for literature comparison.
    """
    influence = intervals.kid_influence(gen.pool, ref.pool)
    low = high = math.nan
    if n_bootstrap > 0:
        half = intervals.z_quantile(alpha) * math.sqrt(
            intervals.delta_variance(influence, np.arange(len(gen)), len(gen)))
        low, high = influence.value - half, influence.value + half
    subsets = kid.KidKernels(gen.pool, ref.pool).kid(seed=seed, n_subsets=n_subsets)
    return MetricResult("kid", influence.value, kid.INFO.higher_is_better, len(gen), low, high,
                        std=subsets.std, seed=seed,
                        params={"n_subsets": n_subsets, "subset_size": subsets.subset_size,
                                "subset_mean": subsets.mean, "subset_std": subsets.std,
                                "interval": "delta method (U-statistic projections), symmetric",
                                "interval_covers": "the population MMD² (the estimator is unbiased)"})


def _is(gen: InceptionFeatures, seed: int, n_bootstrap: int, alpha: float, splits: int
        ) -> MetricResult:
    """IS with a t-interval over its independent splits (covers IS at split size n/splits)."""
    if gen.logits.shape[1] == 0:  # weights without the 1008-way classifier (NVIDIA format)
        fmt = gen.identity.extra.get("weights_format", "?")
        return MetricResult("is", math.nan, inception_score.INFO.higher_is_better, len(gen),
                            seed=seed, status="unavailable", params={"splits": splits},
                            warnings=(f"IS unavailable: these Inception weights ({fmt}) have no "
                                      "1008-way classifier; FID and KID do not need it",))
    point = inception_score.logits_to_inception_score(gen.logits, seed=seed, splits=splits)
    low = high = math.nan
    if n_bootstrap > 0:
        found = intervals.split_t_interval(point.split_scores, alpha)
        low, high = found.low, found.high
    return MetricResult("is", point.mean, inception_score.INFO.higher_is_better, len(gen), low,
                        high, std=point.std, seed=seed,
                        params={"splits": splits, "interval": f"t over {splits} independent splits",
                                "interval_covers": f"IS at split size n/{splits}"})


def image_metrics(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics | None,
                  names: Sequence[str], *, seed: int, n_bootstrap: int = DEFAULT_IMAGE_BOOTSTRAP,
                  alpha: float = DEFAULT_ALPHA, kid_subsets: int = kid.DEFAULT_SUBSETS,
                  is_splits: int = inception_score.DEFAULT_SPLITS, system: str = "",
                  fid_inf_points: int = fid_inf.DEFAULT_POINTS,
                  fid_inf_min_fraction: float = fid_inf.DEFAULT_MIN_FRACTION
                  ) -> list[MetricResult]:
    """FID / KID / IS of ``gen`` (against ``ref`` for FID and KID), stamped with the identity.

    ``ref`` may be saved statistics (FID only; KID then raises ConfigError). ``n_bootstrap=0``
    gives no CI (NaN bounds).
    """
    results = []
    for name in parse_metric_names(list(names)):
        if name == "is":
            results.append(_is(gen, seed, n_bootstrap, alpha, is_splits))
        elif name in ("fid", "kid", "fid_inf"):
            if ref is None:
                raise ConfigError(f"{name} needs a reference (--reference DIR or STATS.npz)")
            source = ref.source if isinstance(ref, ReferenceStatistics) else "reference features"
            fid.check_identity(gen.identity, ref.identity, source)
            if name == "fid":
                results.append(_fid(gen, ref, seed, n_bootstrap, alpha))
            elif name == "fid_inf":
                results.append(_fid_inf(gen, ref, seed, alpha, fid_inf_points, fid_inf_min_fraction))
            elif isinstance(ref, ReferenceStatistics):
                raise ConfigError("KID needs reference images, not saved statistics",
                                  hint="pass --reference DIR, or drop kid from --metrics")
            else:
                results.append(_kid(gen, ref, seed, n_bootstrap, alpha, kid_subsets))
    identity = gen.identity.to_dict()
    status = "uncalibrated" if gen.identity.uncalibrated else "ok"
    images = gen.report.to_dict()
    return [replace(m, system=system, extractor=identity,
                    status=m.status if m.status == "unavailable" else status,
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
            results.append(compute_clip_score(ids, images, texts.embeddings, name=name,
                                              clusters=[n.image_id for n in narratives], **common))
        elif name == "r_precision":
            found = compute_r_precision(ids, [n.image_id for n in narratives], images,
                                        texts.embeddings, **common)
            results.append(found.metric)
    return results

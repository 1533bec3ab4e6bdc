"""The Inception-space metrics engine: FID, KID and IS of one set of features, with CIs.

    extractors = FeatureExtractors(ExtractorSettings(inception_weights="w.pth", device="cpu"))
    gen, ref = extractors.inception(gen_paths), extractors.inception(ref_paths)
    results = image_metrics(gen, ref, ["fid", "kid", "is"], seed=0)

FID, KID, IS and FID_inf share ONE Inception forward pass per image (the ``inception``
extractor of :mod:`trecs_eval.features.registry`; ``ExtractorSettings`` and ``FeatureExtractors``
are re-exported here). Runs and ``trecs-eval metrics`` reach these functions through the metric
registry (:mod:`trecs_eval.stages.inception`). Intervals of FID/KID/IS/FID_inf come from
:mod:`trecs_eval.metrics.intervals` (delta method for FID and KID, t over splits for IS), each
stating the quantity it covers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from trecs_eval.errors import ConfigError, UnknownNameError, suggest
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.registry import ExtractorSettings, FeatureExtractors
from trecs_eval.metrics import fid, fid_inf, inception_score, intervals, kid
from trecs_eval.metrics.intervals import ITEMS_ARE_IMAGES
from trecs_eval.metrics.intervals import ImageClusters as Images
from trecs_eval.metrics.types import MetricResult

if TYPE_CHECKING:
    from trecs_eval.features.inception import InceptionFeatures

__all__ = ["DEFAULT_ALPHA", "DEFAULT_IMAGE_BOOTSTRAP", "ExtractorSettings", "FeatureExtractors",
           "ReferenceStatistics", "image_metrics"]

# n_bootstrap > 0 asks for intervals (0: none). FID/KID/IS/FID_inf intervals are analytic
# (trecs_eval.metrics.intervals) and resample nothing, so no resample count is recorded.
DEFAULT_IMAGE_BOOTSTRAP = 100
DEFAULT_ALPHA = 0.05
INCEPTION_METRICS = ("fid", "kid", "is", "fid_inf")  # what image_metrics computes (its dispatch)


def _delta_text(what: str, n_bootstrap: int) -> str:
    return f"delta method ({what}), symmetric, no resamples" if n_bootstrap > 0 else "none"


def _fid(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics, seed: int,
         n_bootstrap: int, alpha: float, images: Images = ITEMS_ARE_IMAGES) -> MetricResult:
    """FID with a delta-method interval for "FID at this n" (see :mod:`trecs_eval.metrics.intervals`),
    clustered by image on both sides (``images``)."""
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
        half = intervals.z_quantile(alpha) * math.sqrt(images.variance(influence))
        low, high = value - half, value + half
    return MetricResult("fid", value, fid.INFO.higher_is_better, len(gen), low, high, seed=seed,
                        warnings=info.warnings,
                        params={"method": info.method, "reference_n": ref_stats.n,
                                "negative_eigenvalues_clipped": info.negative_eigenvalues,
                                "interval": _delta_text("influence functions", n_bootstrap),
                                "interval_covers": covers})


def _fid_inf(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics, seed: int,
             alpha: float, n_points: int, min_fraction: float, images: Images = ITEMS_ARE_IMAGES
             ) -> MetricResult:
    """FID_inf (Chong & Forsyth 2020) and its interval for the population FID (:mod:`fid_inf`)."""
    reference = ref.stats if isinstance(ref, ReferenceStatistics) else ref.pool
    found = fid_inf.features_to_fid_inf(gen.pool, reference, seed=seed, alpha=alpha, n_points=n_points,
                                        min_fraction=min_fraction, images=images)
    warnings = found.warnings + (() if found.reference_extrapolated else (
        "FID_inf against saved statistics: only the generated side is extrapolated; the reference's "
        "own finite-sample bias remains",))
    return MetricResult("fid_inf", found.value, fid_inf.INFO.higher_is_better, len(gen), found.low,
                        found.high, seed=seed, warnings=warnings,
                        params={"sizes": list(found.sizes), "fids": list(found.fids), "slope": found.slope,
                                "se_sampling": found.se_sampling, "se_fit": found.se_fit,
                                "n_points": n_points, "min_fraction": min_fraction,
                                "interval": "delta-method sampling error (no resamples) plus the fit's error",
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
         alpha: float, n_subsets: int, images: Images = ITEMS_ARE_IMAGES) -> MetricResult:
    """KID = the unbiased MMD² over all n x m pairs, with a delta-method interval for it.

    Value and interval are one statistic. It equals torch-fidelity's subset-averaged KID when
    n = m <= 1000 (every subset is the whole set) and has the same expectation otherwise, with
    less variance; the subset mean and std are kept in ``params`` for literature comparison.
    """
    influence = intervals.kid_influence(gen.pool, ref.pool)
    low = high = math.nan
    if n_bootstrap > 0:
        half = intervals.z_quantile(alpha) * math.sqrt(images.variance(influence))
        low, high = influence.value - half, influence.value + half
    subsets = kid.KidKernels(gen.pool, ref.pool).kid(seed=seed, n_subsets=n_subsets)
    return MetricResult("kid", influence.value, kid.INFO.higher_is_better, len(gen), low, high,
                        std=subsets.std, seed=seed,
                        params={"n_subsets": n_subsets, "subset_size": subsets.subset_size,
                                "subset_mean": subsets.mean, "subset_std": subsets.std,
                                "interval": _delta_text("U-statistic projections", n_bootstrap),
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
                        params={"splits": splits, "interval": (f"t over {splits} independent splits"
                                                               if n_bootstrap > 0 else "none"),
                                "interval_covers": f"IS at split size n/{splits}"})


def image_metrics(gen: InceptionFeatures, ref: InceptionFeatures | ReferenceStatistics | None,
                  names: Sequence[str], *, seed: int, n_bootstrap: int = DEFAULT_IMAGE_BOOTSTRAP,
                  alpha: float = DEFAULT_ALPHA, kid_subsets: int = kid.DEFAULT_SUBSETS,
                  is_splits: int = inception_score.DEFAULT_SPLITS, system: str = "",
                  fid_inf_points: int = fid_inf.DEFAULT_POINTS,
                  fid_inf_min_fraction: float = fid_inf.DEFAULT_MIN_FRACTION,
                  images: Images = ITEMS_ARE_IMAGES) -> list[MetricResult]:
    """FID / KID / IS of ``gen`` (against ``ref`` for FID and KID), stamped with the identity.

    ``ref`` may be saved statistics (FID only; KID then raises ConfigError). ``n_bootstrap=0``
    gives no CI (NaN bounds); any positive value asks for the analytic intervals, which resample
    nothing. ``images``: the image of each generated and reference item, the intervals' clusters.
    """
    results = []
    for name in dict.fromkeys(names):
        if name not in INCEPTION_METRICS:
            raise UnknownNameError(f"not an Inception metric: {name!r}{suggest(name, INCEPTION_METRICS)}")
        if name == "is":
            results.append(_is(gen, seed, n_bootstrap, alpha, is_splits))
        elif name in ("fid", "kid", "fid_inf"):
            if ref is None:
                raise ConfigError(f"{name} needs a reference (--reference DIR or STATS.npz)")
            source = ref.source if isinstance(ref, ReferenceStatistics) else "reference features"
            fid.check_identity(gen.identity, ref.identity, source)
            if name == "fid":
                results.append(_fid(gen, ref, seed, n_bootstrap, alpha, images))
            elif name == "fid_inf":
                results.append(_fid_inf(gen, ref, seed, alpha, fid_inf_points, fid_inf_min_fraction,
                                        images))
            elif isinstance(ref, ReferenceStatistics):
                raise ConfigError("KID needs reference images, not saved statistics",
                                  hint="pass --reference DIR, or drop kid from --metrics")
            else:
                results.append(_kid(gen, ref, seed, n_bootstrap, alpha, kid_subsets, images))
    identity = gen.identity.to_dict()
    status = "uncalibrated" if gen.identity.uncalibrated else "ok"
    images = gen.report.to_dict()
    return [replace(m, system=system, extractor=identity,
                    status=m.status if m.status == "unavailable" else status,
                    params={**m.params, "alpha": alpha,
                            "preprocessing": gen.identity.preprocessing, "images": images})
            for m in results]

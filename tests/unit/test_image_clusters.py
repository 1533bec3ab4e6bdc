"""Images are the sampling unit of every set metric's interval, on both sides.

Each test is checked against an independent form: the textbook standard error of a mean, a
finite-difference derivative of FID in the reference items' weights (on skewed data, where the
mean term matters), a full-pairs MMD² written out here, scipy's OLS standard error of an
intercept, and cluster sums taken in plain loops.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import sqrtm

from tests.trecs_scene import make_narrative
from trecs_eval.data.evalset import EvalItem
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.measure import eval_reference
from trecs_eval.metrics import engine, fid_inf, intervals, prdc
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci
from trecs_eval.metrics.fid import features_to_fid
from trecs_eval.metrics.intervals import ImageClusters
from trecs_eval.metrics.types import MetricInputs
from trecs_eval.stages import prdc as prdc_stage

EXACT = 1e-12  # the same float64 sums in another order
# Finite differences use 1/m-weighted reference moments, the influence values ddof=1 ones:
# they differ by O(1/m) relative (m = 400 here).
INFLUENCE_REL_TOL = 0.03
EPSILON = 1e-5
IDENTITY = ExtractorIdentity(name="inception-v3-compat", weights_sha256="cd" * 32,
                             layers=("2048", "logits_unbiased"), preprocessing="tf1", uncalibrated=True)
Z95 = float(stats.norm.ppf(0.975))


def _fid_weighted_reference(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """FID with ddof=1 generated moments and w-weighted (sum 1) reference moments, via scipy's sqrtm."""
    mu_g, s_g = x.mean(axis=0), np.cov(x, rowvar=False, ddof=1)
    mu_r = w @ y
    centred = y - mu_r
    s_r = (centred * w[:, None]).T @ centred
    return float(np.sum((mu_g - mu_r) ** 2) + np.trace(s_g) + np.trace(s_r)
                 - 2.0 * np.trace(sqrtm(s_g @ s_r).real))


def test_reference_influence_values_are_derivatives_of_fid_on_skewed_data() -> None:
    rng = np.random.default_rng(3)
    d, m = 5, 400
    x = rng.normal(1.5, 1.0, (300, d))  # a large mean difference: the mean term dominates
    y = rng.exponential(1.0, (m, d)) ** 2  # skewed: items far out on one side only
    found = intervals.fid_influence(x, y)
    base = np.full(m, 1.0 / m)
    # the items with the largest |v . (mu_g - mu_r)|: where the mean term's sign decides the value
    lever = np.abs((y - y.mean(axis=0)) @ (x.mean(axis=0) - y.mean(axis=0)))
    for item in np.argsort(lever)[-3:]:
        bumped = (1 - EPSILON) * base
        bumped[item] += EPSILON
        derivative = (_fid_weighted_reference(x, y, bumped) - _fid_weighted_reference(x, y, base)) / EPSILON
        assert found.reference[item] == pytest.approx(derivative, rel=INFLUENCE_REL_TOL), item


def test_clustered_variance_equals_the_textbook_standard_errors() -> None:
    rng = np.random.default_rng(0)
    values = rng.exponential(1.0, 12)
    influence = intervals.mean_influence(values)
    # every item its own cluster: Var(mean) = s² / n with the ddof=1 sample variance
    assert ImageClusters().variance(influence) == pytest.approx(values.var(ddof=1) / values.size, rel=EXACT)
    # an image's narratives all equal: the variance of the mean of C image values, s_C² / C
    per_image = rng.normal(0.0, 1.0, 5)
    repeated = np.repeat(per_image, 3)
    images = ImageClusters.of(np.repeat(np.arange(5), 3))
    found = images.variance(intervals.mean_influence(repeated))
    assert found == pytest.approx(per_image.var(ddof=1) / per_image.size, rel=EXACT)
    assert images.params(15) == {"n_images": 5, "narratives_per_image": 3.0}  # what results record


def _looped_variance(values: np.ndarray, labels: list[str]) -> float:
    totals: dict[str, float] = defaultdict(float)
    for value, label in zip(values - values.mean(), labels, strict=True):
        totals[label] += value
    c = len(totals)
    return c / (c - 1) * sum(t * t for t in totals.values()) / values.size ** 2


def _inception(pool: np.ndarray) -> InceptionFeatures:
    n = len(pool)
    return InceptionFeatures(pool=pool.astype(np.float32), logits=np.zeros((n, 0), np.float32),
                             paths=tuple(f"{i}.png" for i in range(n)), identity=IDENTITY)


def test_fid_and_kid_run_intervals_cluster_by_image_on_both_sides() -> None:
    rng = np.random.default_rng(1)
    base_g, base_r = rng.random((30, 16)), rng.random((35, 16)) + 0.1
    # two narratives per generated image (near copies) and a reference image listed twice
    gen = np.repeat(base_g, 2, axis=0) + rng.normal(0.0, 0.01, (60, 16))
    ref = np.concatenate([base_r, base_r[:20]])
    gen_images = [f"g{i // 2}" for i in range(60)]
    ref_images = [f"r{i}" for i in range(35)] + [f"r{i}" for i in range(20)]
    images = ImageClusters.of(gen_images, ref_images)
    found = {r.name: r for r in engine.image_metrics(_inception(gen), _inception(ref), ["fid", "kid"],
                                                     seed=0, images=images)}
    naive = {r.name: r
             for r in engine.image_metrics(_inception(gen), _inception(ref), ["fid", "kid"], seed=0)}
    x, y = gen.astype(np.float32).astype(np.float64), ref.astype(np.float32).astype(np.float64)
    for name, influence in (("fid", intervals.fid_influence(x, y)), ("kid", intervals.kid_influence(x, y))):
        expected = Z95 * math.sqrt(_looped_variance(influence.generated, gen_images)
                                   + _looped_variance(influence.reference, ref_images))
        result = found[name]
        assert (result.ci_high - result.ci_low) / 2 == pytest.approx(expected, rel=1e-9), name
        assert result.ci_high - result.ci_low > 1.2 * (naive[name].ci_high - naive[name].ci_low), name
        assert "n_bootstrap" not in result.params and "no resamples" in result.params["interval"]


def test_kid_value_is_the_all_pairs_statistic_when_n_differs_from_m() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.random((60, 12)), rng.random((90, 12)) + 0.05
    (kid,) = engine.image_metrics(_inception(x), _inception(y), ["kid"], seed=0)
    x, y = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    n, m, d = len(x), len(y), x.shape[1]
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    expected = ((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1)) + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
                - 2.0 * k_xy.mean())
    assert kid.value == pytest.approx(expected, rel=1e-9)
    assert kid.value != pytest.approx(kid.params["subset_mean"], rel=1e-6)  # n != m: subsets differ


def test_fid_inf_interval_adds_the_fit_error_to_the_clustered_sampling_error() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.3, 1.0, (80, 6)), rng.normal(0.0, 1.0, (70, 6))
    gen_images = [f"g{i // 2}" for i in range(80)]
    images = ImageClusters.of(gen_images)
    found = fid_inf.features_to_fid_inf(x, y, seed=0, images=images)
    fit = stats.linregress(1.0 / np.array(found.sizes, np.float64), np.array(found.fids))
    sampling = intervals.fid_influence(x, y)
    se_sampling = math.sqrt(_looped_variance(sampling.generated, gen_images)
                            + _looped_variance(sampling.reference, [str(i) for i in range(70)]))
    assert fit.intercept_stderr > 0.1 * se_sampling  # the fit's error is not negligible here
    assert found.value == pytest.approx(fit.intercept, rel=1e-9)
    assert (found.high - found.low) / 2 == pytest.approx(Z95 * math.hypot(se_sampling, fit.intercept_stderr),
                                                         rel=1e-9)


def _prdc_inputs(fake: np.ndarray, real: np.ndarray, gen_images: list[int], ref_images: tuple[str, ...]
                 ) -> MetricInputs:
    narratives = tuple(make_narrative(f"{img}_{k}", [("a dog", [(0.5, 0.5)])])
                       for k, img in enumerate(gen_images))
    return MetricInputs(system="s", item_ids=tuple(n.item_id for n in narratives), paths=(), seed=7,
                        features={"inception": fake}, identities={"inception": {}},
                        reference={"inception": real}, narratives=narratives, reference_images=ref_images)


def test_prdc_stage_resamples_images_on_both_sides() -> None:
    rng = np.random.default_rng(5)
    fake = np.repeat(rng.normal(0.2, 1.0, (40, 4)), 2, axis=0) + rng.normal(0.0, 0.01, (80, 4))
    real = np.repeat(rng.normal(0.0, 1.0, (50, 4)), 2, axis=0) + rng.normal(0.0, 0.01, (100, 4))
    gen_images = [1000 + i // 2 for i in range(80)]
    ref_images = tuple(f"r{i // 2}" for i in range(100))
    params = {"features": "inception", "nearest_k": 5, "n_resamples": 300, "alpha": 0.05}
    inputs = _prdc_inputs(fake, real, gen_images, ref_images)
    results = {name: getattr(prdc_stage, name.upper()).compute(inputs, params) for name in prdc.METRIC_NAMES}
    per_item = prdc.prdc_parts(real, fake, 5).per_item()
    for name, clusters in (("precision", gen_images), ("density", gen_images), ("recall", ref_images),
                           ("coverage", ref_images)):
        _, low, high = bootstrap_mean_ci(per_item[name], 300, seed=7, clusters=[str(c) for c in clusters])
        assert (results[name].ci_low, results[name].ci_high) == pytest.approx((low, high), abs=EXACT), name
        _, naive_low, naive_high = bootstrap_mean_ci(per_item[name], 300, seed=7)
        assert (naive_low, naive_high) != pytest.approx((low, high), abs=1e-6), name


def test_eval_reference_holds_each_image_once_and_counts_its_narratives(tmp_path: Path) -> None:
    images = [tmp_path / f"{i}.png" for i in range(3)]
    for path in images:
        path.write_bytes(b"")
    items = [EvalItem(make_narrative(f"{img}_{k}", [("a dog", [(0.5, 0.5)])]), reference_image=images[img])
             for img, k in ((0, 1), (0, 2), (1, 1), (2, 1), (2, 2), (2, 3))]
    reference = eval_reference(items, extractors=None)  # type: ignore[arg-type]
    assert reference.paths == images and reference.image_ids == ["0", "1", "2"]
    assert reference.item_ids == ["0_1", "1_1", "2_1"]  # each image's first narrative names its row
    assert reference.record() == {"reference_images": 3, "reference_narratives_per_image": 2.0}


def test_singular_covariance_warning_names_the_features_dimension() -> None:
    rng = np.random.default_rng(6)
    _, info = features_to_fid(rng.random((20, 24)), rng.random((30, 24)))
    (warning,) = [w for w in info.warnings if "singular" in w]
    assert "24 dimensions" in warning and "2048" not in warning
    _, info = features_to_fid(rng.random((40, 24)), rng.random((30, 24)))
    assert not [w for w in info.warnings if "singular" in w]  # n > d: full rank


def test_registered_set_metrics_read_the_images_of_their_inputs() -> None:
    """The run's stages pass each side's images on: FID, KID, FID_inf, FD-DINOv2 and CMMD."""
    from types import SimpleNamespace

    from trecs_eval.metrics import cmmd
    from trecs_eval.stages import cmmd as cmmd_stage
    from trecs_eval.stages import dinov2, inception

    rng = np.random.default_rng(8)
    gen = np.repeat(rng.random((30, 8)), 2, axis=0) + rng.normal(0.0, 0.01, (60, 8))
    ref = rng.random((55, 8)) + 0.1
    gen_images = [i // 2 for i in range(60)]
    ref_images = tuple(f"r{i % 40}" for i in range(55))
    images = ImageClusters.of(gen_images, ref_images)
    unit = gen / np.linalg.norm(gen, axis=1, keepdims=True)
    unit_ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    spaces = {"inception": (_inception(gen), _inception(ref)),
              "dinov2": (SimpleNamespace(features=gen, identity=IDENTITY),
                         SimpleNamespace(features=ref, identity=IDENTITY)),
              "clip_cmmd": (unit, unit_ref)}
    inputs = _prdc_inputs(gen, ref, gen_images, ref_images)
    inputs = MetricInputs(**{**inputs.__dict__, "features": {s: g for s, (g, _) in spaces.items()},
                             "reference": {s: r for s, (_, r) in spaces.items()},
                             "identities": {s: {} for s in spaces}})
    g64, r64 = gen.astype(np.float32).astype(np.float64), ref.astype(np.float32).astype(np.float64)
    expected = {"fid": intervals.fid_influence(g64, r64), "kid": intervals.kid_influence(g64, r64),
                "fd_dinov2": intervals.fid_influence(gen, ref), "cmmd": cmmd.cmmd_influence(unit, unit_ref)}
    metrics = {"fid": inception.FID, "kid": inception.KID, "fd_dinov2": dinov2.FD_DINOV2,
               "cmmd": cmmd_stage.CMMD, "fid_inf": inception.FID_INF}
    for name, metric in metrics.items():
        result = metric.compute(inputs, dict(metric.params))
        half = (result.ci_high - result.ci_low) / 2
        if name == "fid_inf":
            direct = fid_inf.features_to_fid_inf(g64, r64, seed=7, images=images)
            assert half == pytest.approx((direct.high - direct.low) / 2, rel=1e-9)
            continue
        assert half == pytest.approx(Z95 * math.sqrt(images.variance(expected[name])), rel=1e-6), name

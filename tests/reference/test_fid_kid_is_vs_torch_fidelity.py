"""FID, KID and IS equal torch_fidelity.calculate_metrics on the same two folders and weights file.

Our features come from our loader + our copy of the forward pass (after the same TF1 resize);
torch-fidelity runs its own dataset, loader and ``forward``. The same calibrated weights file
goes to both through ``feature_extractor_weights_path`` / ``inception_weights``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from trecs_eval.features.images import list_images
from trecs_eval.features.inception import InceptionExtractor, InceptionFeatures
from trecs_eval.metrics.fid import features_to_fid, features_to_statistics, statistics_to_fid
from trecs_eval.metrics.inception_score import logits_to_inception_score
from trecs_eval.metrics.kid import features_to_kid

# Same network, same float32 features (our per-image TF1 resize is bit-identical to the batched
# one); torch-fidelity keeps mu in float32 where we use float64: ~1e-6 relative on FID.
FID_REL_TOL_VS_TORCH_FIDELITY = 1e-5
# torch-fidelity evaluates the cubic kernel and its sums in float32 (kernel values ~2, so float32
# round-off ~2e-7 per entry); we use float64. Same subsets (same RandomState stream).
KID_ABS_TOL_VS_TORCH_FIDELITY = 1e-6
# Both compute IS in float64 with the same permutation and chunks, but the float32 logits differ
# in round-off: torch-fidelity's come from one batched matmul, ours from one matrix-vector product
# per image (so that an image's logits do not depend on its batch); measured 6.5e-8 relative on IS.
IS_REL_TOL_VS_TORCH_FIDELITY = 1e-6
# The same float32 logits given to both: only the float64 summation order differs.
IS_REL_TOL_SAME_LOGITS = 1e-9
SEED = 7
KID_SUBSET_SIZE = 50


@pytest.fixture(scope="module")
def ours(two_image_sets: tuple[Path, Path], inception_weights: Path
         ) -> tuple[InceptionFeatures, InceptionFeatures]:
    extractor = InceptionExtractor(inception_weights=str(inception_weights), device="cpu",
                                   progress=False)
    a, b = two_image_sets
    return extractor.extract(list_images(a)), extractor.extract(list_images(b))


@pytest.fixture(scope="module")
def theirs(two_image_sets: tuple[Path, Path], inception_weights: Path) -> dict[str, Any]:
    a, b = two_image_sets
    return torch_fidelity.calculate_metrics(
        input1=str(a), input2=str(b), fid=True, kid=True, isc=True, cuda=False, cache=False,
        verbose=False, save_cpu_ram=True, feature_extractor_weights_path=str(inception_weights),
        kid_subset_size=KID_SUBSET_SIZE, rng_seed=SEED)


def test_fid_matches_torch_fidelity(ours: Any, theirs: dict[str, Any]) -> None:
    value, info = features_to_fid(ours[0].pool, ours[1].pool)
    expected = theirs["frechet_inception_distance"]
    assert expected > 1.0  # calibrated weights: the two sets really differ
    assert abs(value - expected) <= FID_REL_TOL_VS_TORCH_FIDELITY * expected
    assert info.method == "nuclear" and any("2048" in w for w in info.warnings)
    via_stats, _ = statistics_to_fid(features_to_statistics(ours[0].pool),
                                     features_to_statistics(ours[1].pool))
    assert abs(via_stats - expected) <= FID_REL_TOL_VS_TORCH_FIDELITY * expected


def test_kid_matches_torch_fidelity(ours: Any, theirs: dict[str, Any]) -> None:
    kid = features_to_kid(ours[0].pool, ours[1].pool, seed=SEED, subset_size=KID_SUBSET_SIZE)
    assert kid.mean > 10 * KID_ABS_TOL_VS_TORCH_FIDELITY
    assert abs(kid.mean - theirs["kernel_inception_distance_mean"]) <= KID_ABS_TOL_VS_TORCH_FIDELITY
    assert abs(kid.std - theirs["kernel_inception_distance_std"]) <= KID_ABS_TOL_VS_TORCH_FIDELITY


def test_is_matches_torch_fidelity(ours: Any, theirs: dict[str, Any]) -> None:
    score = logits_to_inception_score(ours[0].logits, seed=SEED)
    assert score.mean > 1.5  # calibrated classifier: IS is informative, not 1.0
    for mine, key in ((score.mean, "inception_score_mean"), (score.std, "inception_score_std")):
        assert abs(mine - theirs[key]) <= IS_REL_TOL_VS_TORCH_FIDELITY * abs(theirs[key])


def test_pure_metric_functions_match_torch_fidelity_on_random_features() -> None:
    """No network: the metric code alone vs torch-fidelity's on the same float32 features."""
    rng = np.random.default_rng(3)
    x = rng.random((120, 64), dtype=np.float32)
    y = (rng.random((90, 64), dtype=np.float32) * 1.2 + 0.05).astype(np.float32)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    stats_x, stats_y = fid_features_to_statistics(tx.double()), fid_features_to_statistics(ty.double())
    expected = fid_statistics_to_metric(stats_x, stats_y, False)["frechet_inception_distance"]
    assert abs(features_to_fid(x, y)[0] - expected) <= FID_REL_TOL_VS_TORCH_FIDELITY * expected
    kid_theirs = kid_features_to_metric(tx, ty, kid_subsets=20, kid_subset_size=60, rng_seed=SEED,
                                        verbose=False)
    kid = features_to_kid(x, y, seed=SEED, n_subsets=20, subset_size=60)
    assert abs(kid.mean - kid_theirs["kernel_inception_distance_mean"]) <= KID_ABS_TOL_VS_TORCH_FIDELITY
    logits = rng.standard_normal((97, 30)).astype(np.float32) * 3
    is_theirs = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=True, rng_seed=SEED)
    score = logits_to_inception_score(logits, seed=SEED)
    assert abs(score.mean - is_theirs["inception_score_mean"]) <= (
        IS_REL_TOL_SAME_LOGITS * is_theirs["inception_score_mean"])

"""FID from statistics vs the scipy.linalg.sqrtm formula, closed forms, and the two code paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from trecs_eval.errors import IdentityMismatchError, InputError, TrecsEvalError
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.metrics.fid import (
    FidAgainstReference,
    GaussianStatistics,
    check_identity,
    features_to_fid,
    features_to_statistics,
    load_statistics,
    save_statistics,
    statistics_to_fid,
)

FID_REL_TOL_VS_SQRTM = 1e-6  # well-conditioned covariances: both methods are accurate to ~1e-12
FID_REL_TOL_CLOSED_FORM = 1e-10  # diagonal covariances: exact up to float64 round-off
# Nuclear-norm path vs eigh path when n < d: the eigh path takes square roots of ~1e-16
# eigenvalues of a singular matrix (each contributes up to ~1e-8); measured ~2e-8 relative.
FID_REL_TOL_PATHS = 1e-6


def _random_covariance(rng: np.random.Generator, d: int) -> np.ndarray:
    """Well-conditioned SPD matrix: Q diag(eigs in [0.5, 2]) Q^T."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(0.5, 2.0, d)) @ q.T


@pytest.mark.parametrize("d", [8, 64, 256])
def test_matches_sqrtm_formula(d: int) -> None:
    rng = np.random.default_rng(d)
    a = GaussianStatistics(rng.standard_normal(d), _random_covariance(rng, d), 5000)
    b = GaussianStatistics(rng.standard_normal(d), _random_covariance(rng, d), 5000)
    diff = a.mu - b.mu
    expected = (diff @ diff + np.trace(a.sigma) + np.trace(b.sigma)
                - 2 * np.trace(scipy.linalg.sqrtm(a.sigma @ b.sigma)).real)
    value, info = statistics_to_fid(a, b)
    assert abs(value - expected) <= FID_REL_TOL_VS_SQRTM * expected
    assert info.method == "eigh" and info.warnings == ()  # n >= 2048 on both sides


def test_diagonal_closed_form() -> None:
    rng = np.random.default_rng(1)
    var1, var2 = rng.uniform(0.1, 3, 50), rng.uniform(0.1, 3, 50)
    mu1, mu2 = rng.standard_normal(50), rng.standard_normal(50)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))
    value, _ = statistics_to_fid(GaussianStatistics(mu1, np.diag(var1), 4096),
                                 GaussianStatistics(mu2, np.diag(var2), 4096))
    assert abs(value - expected) <= FID_REL_TOL_CLOSED_FORM * expected


def test_nuclear_norm_path_equals_eigh_path_when_n_below_d() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 128))
    y = rng.standard_normal((30, 128)) * 1.5 + 0.3
    nuclear, info = features_to_fid(x, y)
    eigh, eigh_info = statistics_to_fid(features_to_statistics(x), features_to_statistics(y))
    assert info.method == "nuclear" and eigh_info.negative_eigenvalues >= 0
    assert abs(nuclear - eigh) <= FID_REL_TOL_PATHS * nuclear
    against = FidAgainstReference(features_to_statistics(y))(x)
    assert abs(against - nuclear) <= FID_REL_TOL_PATHS * nuclear
    assert any(f"in {x.shape[1]} dimensions" in w for w in info.warnings)  # the features' own d, not 2048


def test_mean_shift_adds_squared_norm() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 16))
    shift = rng.standard_normal(16)
    value, _ = features_to_fid(x, x + shift)
    assert abs(value - shift @ shift) <= FID_REL_TOL_CLOSED_FORM * 1e3 * (shift @ shift)


def test_set_against_itself_is_zero_and_never_negative() -> None:
    x = np.random.default_rng(5).standard_normal((64, 32)).astype(np.float32)
    value, info = features_to_fid(x, x)
    assert 0.0 <= value < 1e-6
    stats = features_to_statistics(x)
    value2, info2 = statistics_to_fid(stats, stats)
    assert 0.0 <= value2 < 1e-6
    for inf in (info, info2):  # a round-off negative is clamped and said, never hidden
        assert (inf.clamped_negative_fid < 0) == any("clamped" in w for w in inf.warnings)


def test_non_psd_covariance_is_an_error() -> None:
    bad = GaussianStatistics(np.zeros(3), np.diag([1.0, -1.0, 1.0]), 5000)
    good = GaussianStatistics(np.zeros(3), np.eye(3), 5000)
    with pytest.raises(TrecsEvalError, match="eigenvalue"):
        statistics_to_fid(bad, good)


def test_nan_features_fail_loudly() -> None:
    x = np.ones((10, 4))
    x[3, 2] = np.nan
    with pytest.raises(TrecsEvalError):
        features_to_fid(x, np.random.default_rng(0).standard_normal((10, 4)))


def _identity(preprocessing: str) -> ExtractorIdentity:
    return ExtractorIdentity(name="inception-v3-compat", weights_sha256="ab" * 32,
                             layers=("2048", "logits_unbiased"), preprocessing=preprocessing)


def test_statistics_file_round_trip_and_identity_mismatch(tmp_path: Path) -> None:
    stats = features_to_statistics(np.random.default_rng(6).standard_normal((20, 5)))
    path = tmp_path / "ref.npz"
    save_statistics(path, stats, _identity("tf1"))
    loaded, identity = load_statistics(path)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    assert loaded.n == 20 and identity == _identity("tf1")
    check_identity(_identity("tf1"), identity, str(path))
    with pytest.raises(IdentityMismatchError, match="preprocessing"):
        check_identity(_identity("clean"), identity, str(path))


def test_malformed_statistics_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    with open(path, "wb") as handle:
        np.savez(handle, mu=np.zeros(3), n=np.int64(3), identity=np.array("{}"))
    with pytest.raises(InputError, match="sigma"):
        load_statistics(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"junk\.npz"):
        load_statistics(tmp_path / "junk.npz")


def test_streaming_accumulator_equals_batch_statistics() -> None:
    from trecs_eval.metrics.fid import StatisticsAccumulator

    x = np.random.default_rng(7).standard_normal((203, 12)) * 0.01 + 1e4  # large mean, small spread
    accumulator = StatisticsAccumulator()
    for start in range(0, len(x), 64):
        accumulator.update(x[start:start + 64])
    streamed, direct = accumulator.finalize(), features_to_statistics(x)
    assert streamed.n == direct.n == 203
    np.testing.assert_allclose(streamed.mu, direct.mu, rtol=1e-12)
    np.testing.assert_allclose(streamed.sigma, direct.sigma, rtol=1e-6, atol=1e-12)

"""Fréchet Inception Distance (Heusel et al. 2017), in float64.

    FID = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr sqrt(S_1 S_2)

with mu, S the mean and (ddof=1) covariance of the 2048-d pool features; unit: squared feature
units, lower is better. ``tr sqrt(S_1 S_2)`` is the sum of square roots of the eigenvalues of
the symmetric PSD matrix ``sqrt(S_1) S_2 sqrt(S_1)`` (or ``L^T S_2 L`` with ``S_1 = L L^T``,
the same eigenvalues; ``eigvalsh``, no ``sqrtm``); negative
eigenvalues from round-off are clipped to 0 and counted. With features on both sides and
``min(n_1, n_2) < d`` the exact identity

    tr sqrt(S_1 S_2) = ||B_c A_c^T||_* / sqrt((n_1 - 1)(n_2 - 1))

(nuclear norm of the product of the centred feature matrices) avoids every d x d matrix
function. Example: two sets drawn from the same Gaussian give FID near 0; shifting one set's
mean by ``v`` adds ``||v||^2``.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from trecs_eval.atomic import atomic_write
from trecs_eval.errors import IdentityMismatchError, InputError, TrecsEvalError
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.metrics.types import MetricInfo

INFO = MetricInfo("fid", higher_is_better=False, unit="squared pool3 units",
                  description="Fréchet Inception Distance (2048-d pool3, float64)")
NEGATIVE_EIGENVALUE_REL_TOL = 1e-8  # below -tol * largest eigenvalue it is not round-off
SYMMETRY_REL_TOL = 1e-9  # |S - S^T| beyond this times max |S| is not float64 round-off of a covariance
NEGATIVE_FID_REL_TOL = 1e-9  # FID below -tol * (tr S1 + tr S2) is a bug, not round-off


@dataclass(frozen=True)
class GaussianStatistics:
    """Mean (d,), covariance (d, d) (ddof=1), float64, and the sample count n."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


@dataclass(frozen=True)
class FidInfo:
    """How a FID value was computed and what was clipped."""

    method: str  # "eigh" (from statistics) or "nuclear" (from features, n < d)
    negative_eigenvalues: int
    clamped_negative_fid: float  # the raw value when a tiny negative FID was set to 0, else 0.0
    warnings: tuple[str, ...]


def _require_finite(array: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise TrecsEvalError(f"{what} contain {bad} NaN or inf values; FID is undefined")


def features_to_statistics(features: np.ndarray) -> GaussianStatistics:
    """float64 mean and ddof=1 covariance of (n, d) features; n >= 2."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise TrecsEvalError(f"FID needs an (n, d) feature matrix with n >= 2, got shape {x.shape}")
    _require_finite(x, "features")
    return GaussianStatistics(x.mean(axis=0), np.cov(x, rowvar=False), int(x.shape[0]))


class StatisticsAccumulator:
    """Streaming float64 mean/covariance: ``update`` per batch, ``finalize`` once.

    Sums are taken around a shift (the first batch's mean) so that large feature means do not
    cancel catastrophically: ``S = (sum (x-c)(x-c)^T - n (mu-c)(mu-c)^T) / (n-1)``.
    Memory is O(d^2), whatever the number of images.
    """

    def __init__(self) -> None:
        self.n = 0
        self.shift: np.ndarray | None = None
        self.total: np.ndarray | None = None
        self.outer: np.ndarray | None = None

    def update(self, features: np.ndarray) -> None:
        x = np.asarray(features, dtype=np.float64)
        _require_finite(x, "features")
        if self.shift is None:
            self.shift = x.mean(axis=0)
            self.total = np.zeros_like(self.shift)
            self.outer = np.zeros((x.shape[1], x.shape[1]))
        centred = x - self.shift
        self.total += centred.sum(axis=0)
        self.outer += centred.T @ centred
        self.n += len(x)

    def finalize(self) -> GaussianStatistics:
        if self.n < 2 or self.shift is None or self.total is None or self.outer is None:
            raise TrecsEvalError(f"FID statistics need at least 2 samples, got {self.n}")
        mean_offset = self.total / self.n
        sigma = (self.outer - self.n * np.outer(mean_offset, mean_offset)) / (self.n - 1)
        return GaussianStatistics(self.shift + mean_offset, sigma, self.n)


def _clip_eigenvalues(values: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    """Clip round-off negatives to 0 and count them; a large negative means a non-PSD input."""
    scale = max(float(np.max(np.abs(values), initial=0.0)), np.finfo(np.float64).tiny)
    if values.size and values.min() < -NEGATIVE_EIGENVALUE_REL_TOL * scale:
        raise TrecsEvalError(f"{what} has eigenvalue {values.min():.3g} (largest {scale:.3g}):"
                             " not a covariance matrix")
    negative = int(np.count_nonzero(values < 0))
    return np.clip(values, 0.0, None), negative


def sqrt_psd(sigma: np.ndarray) -> tuple[np.ndarray, int]:
    """Symmetric square root of a PSD matrix by ``eigh``; returns it and the clipped count."""
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    values, negative = _clip_eigenvalues(values, "covariance")
    return (vectors * np.sqrt(values)) @ vectors.T, negative


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> tuple[float, int]:
    """tr sqrt(S1 S2) = sum sqrt(eig(M)) for a symmetric PSD M similar to S1 S2; returns it and
    the number of round-off negatives clipped.

    M = L^T S2 L with the Cholesky factor S1 = L L^T when S1 is positive definite (one cheap
    factorization), else M = sqrt(S1) S2 sqrt(S1) from ``eigh`` (singular S1, n < d).
    """
    try:
        lower = np.linalg.cholesky((sigma1 + sigma1.T) / 2)
        middle, negative1 = lower.T @ sigma2 @ lower, 0
    except np.linalg.LinAlgError:
        root1, negative1 = sqrt_psd(sigma1)
        middle = root1 @ sigma2 @ root1
    values, negative2 = _clip_eigenvalues(np.linalg.eigvalsh((middle + middle.T) / 2),
                                          "S1^(1/2) S2 S1^(1/2)")
    return float(np.sqrt(values).sum()), negative1 + negative2


def _sample_warnings(n1: int, n2: int, d: int) -> list[str]:
    """A warning when a covariance is singular: n samples span at most n - 1 of the d dimensions
    (d is the features' own: 2048 for Inception pool3, 1024 for DINOv2 ViT-L/14, ...)."""
    small = min(n1, n2)
    if small <= d:
        return [f"FID from {small} samples on one side in {d} dimensions (at most {small - 1} < {d} "
                "directions): the covariance is singular and FID is biased upwards; compare only at equal n"]
    return []


def _finish(mean_term: float, trace1: float, trace2: float, tr_sqrt: float, method: str,
            negative: int, warnings: list[str]) -> tuple[float, FidInfo]:
    value = mean_term + trace1 + trace2 - 2.0 * tr_sqrt
    clamped = 0.0
    if value < 0:
        if value < -NEGATIVE_FID_REL_TOL * max(trace1 + trace2, 1.0):
            raise TrecsEvalError(f"FID came out at {value:.6g} < 0 beyond round-off")
        clamped, value = value, 0.0
        warnings.append(f"FID {clamped:.3g} < 0 from round-off was clamped to 0")
    if negative:
        warnings.append(f"{negative} tiny negative eigenvalues (round-off; expected when a covariance"
                        " is singular) were clipped to 0")
    if not np.isfinite(value):
        raise TrecsEvalError(f"FID is not finite ({value}); features contain NaN or inf")
    return float(value), FidInfo(method, negative, clamped, tuple(warnings))


def statistics_to_fid(a: GaussianStatistics, b: GaussianStatistics) -> tuple[float, FidInfo]:
    """FID between two Gaussians (see the module doc); warns when either n <= d."""
    if a.mu.shape != b.mu.shape or a.sigma.shape != b.sigma.shape:
        raise TrecsEvalError(f"FID statistics differ in dimension: {a.mu.shape} vs {b.mu.shape}")
    for stats in (a, b):
        _require_finite(stats.sigma, "statistics")
        _require_finite(stats.mu, "statistics")
    diff = np.asarray(a.mu, np.float64) - np.asarray(b.mu, np.float64)
    tr_sqrt, negative = trace_sqrt_product(a.sigma, b.sigma)
    return _finish(float(diff @ diff), float(np.trace(a.sigma)), float(np.trace(b.sigma)),
                   tr_sqrt, "eigh", negative, _sample_warnings(a.n, b.n, a.mu.size))


def features_to_fid(features1: np.ndarray, features2: np.ndarray) -> tuple[float, FidInfo]:
    """FID between two feature sets; the nuclear-norm identity when min(n1, n2) < d."""
    x1, x2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1] or min(len(x1), len(x2)) < 2:
        raise TrecsEvalError(f"FID needs two (n >= 2, d) feature matrices, got {x1.shape}, {x2.shape}")
    _require_finite(x1, "features")
    _require_finite(x2, "features")
    (n1, d), n2 = x1.shape, len(x2)
    if min(n1, n2) >= d:
        return statistics_to_fid(features_to_statistics(x1), features_to_statistics(x2))
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    a, b = x1 - mu1, x2 - mu2
    singular = np.linalg.svd(b @ a.T, compute_uv=False)
    tr_sqrt = float(singular.sum()) / np.sqrt((n1 - 1) * (n2 - 1))
    trace1 = float(np.einsum("ij,ij->", a, a)) / (n1 - 1)  # tr S = sum of squared centred entries
    trace2 = float(np.einsum("ij,ij->", b, b)) / (n2 - 1)
    diff = mu1 - mu2
    return _finish(float(diff @ diff), trace1, trace2, tr_sqrt, "nuclear", 0,
                   _sample_warnings(n1, n2, d))


class FidAgainstReference:
    """FID of many feature subsets against one fixed reference: the bootstrap's inner loop.

    ``sqrt(S_ref)`` is computed once; for subset features with centred matrix A (n x d),
    ``tr sqrt(S S_ref) = sum sqrt(eig(C C^T)) / sqrt(n - 1)`` with ``C = A sqrt(S_ref)``
    (an n x n eigenproblem when n < d).
    """

    def __init__(self, reference: GaussianStatistics) -> None:
        self.reference = reference
        self.root, _ = sqrt_psd(reference.sigma)
        self.trace_ref = float(np.trace(reference.sigma))

    def __call__(self, features: np.ndarray) -> float:
        x = np.asarray(features, np.float64)
        n = len(x)
        mu = x.mean(axis=0)
        centred = (x - mu) @ self.root
        small = centred @ centred.T if n < x.shape[1] else centred.T @ centred
        values, negative = _clip_eigenvalues(np.linalg.eigvalsh(small), "subset covariance")
        tr_sqrt = float(np.sqrt(values).sum()) / np.sqrt(n - 1)
        trace = float(np.einsum("ij,ij->", x - mu, x - mu)) / (n - 1)
        diff = mu - self.reference.mu
        value, _ = _finish(float(diff @ diff), trace, self.trace_ref, tr_sqrt, "eigh", negative, [])
        return value


def save_statistics(path: str | os.PathLike[str], stats: GaussianStatistics,
                    identity: ExtractorIdentity) -> None:
    """Write mu, sigma, n and the extractor identity (JSON) to an .npz file."""
    with atomic_write(path) as handle:  # a file handle keeps numpy from appending ".npz"
        np.savez(handle, mu=stats.mu, sigma=stats.sigma, n=np.int64(stats.n),
                 identity=np.array(identity.canonical_json()))


def load_statistics(path: str | os.PathLike[str]) -> tuple[GaussianStatistics, ExtractorIdentity]:
    """Read a file written by :func:`save_statistics`; a malformed file names the bad field."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"cannot read reference statistics ({err})", path=str(path)) from None
    with data:
        for name in ("mu", "sigma", "n", "identity"):
            if name not in data.files:
                raise InputError("missing array in reference statistics", path=str(path), field=name)
        try:  # an object array (pickle) is refused here, by allow_pickle=False
            mu, sigma, n = data["mu"].astype(np.float64), data["sigma"].astype(np.float64), int(data["n"])
        except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as err:
            raise InputError(f"cannot read reference statistics ({err})", path=str(path)) from None
        try:
            identity = ExtractorIdentity.from_dict(json.loads(str(data["identity"])))
        except (ValueError, TypeError) as err:
            raise InputError(f"bad extractor identity ({err})", path=str(path), field="identity") from err
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise InputError(f"shapes mu {mu.shape}, sigma {sigma.shape} do not match", path=str(path),
                         field="sigma")
    check_statistics(mu, sigma, n, str(path))
    return GaussianStatistics(mu, sigma, n), identity


def check_statistics(mu: np.ndarray, sigma: np.ndarray, n: int, path: str) -> None:
    """InputError naming ``path`` unless mu and sigma are finite, n >= 2 and sigma is a covariance
    (symmetric, no eigenvalue below round-off): caught when the file is read, not deep in FID."""
    for name, array in (("mu", mu), ("sigma", sigma)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise InputError(f"{bad} NaN or inf values in the reference statistics", path, field=name)
    if n < 2:
        raise InputError(f"n = {n}: reference statistics need at least 2 samples", path, field="n")
    scale = max(float(np.max(np.abs(sigma), initial=0.0)), np.finfo(np.float64).tiny)
    if float(np.max(np.abs(sigma - sigma.T), initial=0.0)) > SYMMETRY_REL_TOL * scale:
        raise InputError("the covariance is not symmetric", path, field="sigma")
    try:
        _clip_eigenvalues(np.linalg.eigvalsh(sigma), "the covariance")
    except TrecsEvalError as err:
        raise InputError(err.message, path, field="sigma") from None


def check_identity(expected: ExtractorIdentity, found: ExtractorIdentity, source: str) -> None:
    """IdentityMismatchError when saved statistics came from a different extractor."""
    if expected.key() != found.key():
        raise IdentityMismatchError(
            f"{source} was made by a different extractor: " + "; ".join(found.differences(expected)),
            hint="re-make it with `trecs-eval stats make` using the same weights and preprocessing")

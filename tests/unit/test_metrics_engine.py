"""The engine facade on hand-made features (no network): stamping, CIs, identity checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from trecs_eval.errors import ConfigError, IdentityMismatchError, UnknownNameError
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.metrics import engine
from trecs_eval.metrics.fid import features_to_fid, features_to_statistics
from trecs_eval.metrics.inception_score import logits_to_inception_score
from trecs_eval.metrics.kid import features_to_kid
from trecs_eval.metrics.registry import parse_metric_names

IDENTITY = ExtractorIdentity(name="inception-v3-compat", weights_sha256="cd" * 32,
                             layers=("2048", "logits_unbiased"), preprocessing="tf1", uncalibrated=True)


def _features(seed: int, n: int = 60, shift: float = 0.0, identity: ExtractorIdentity = IDENTITY
              ) -> InceptionFeatures:
    rng = np.random.default_rng(seed)
    return InceptionFeatures(pool=(rng.random((n, 32)) + shift).astype(np.float32),
                             logits=rng.standard_normal((n, 20)).astype(np.float32) * 2,
                             paths=tuple(f"{i}.png" for i in range(n)), identity=identity)


def test_values_equal_the_metric_modules_and_are_stamped() -> None:
    gen, ref = _features(1), _features(2, shift=0.1)
    results = {m.name: m for m in engine.image_metrics(gen, ref, ["fid", "kid", "is"], seed=3,
                                                         n_bootstrap=20, system="sys")}
    assert results["fid"].value == features_to_fid(gen.pool, ref.pool)[0]
    # KID = unbiased MMD² over all pairs; with n = m <= 1000 every torch-fidelity subset is the whole set.
    assert results["kid"].value == pytest.approx(features_to_kid(gen.pool, ref.pool, seed=3).mean, rel=1e-12)
    assert results["is"].value == logits_to_inception_score(gen.logits, seed=3).mean
    for m in results.values():
        assert m.status == "uncalibrated" and m.system == "sys" and m.seed == 3
        assert m.extractor == IDENTITY.to_dict() and m.n == 60
        assert m.ci_low <= m.value <= m.ci_high and math.isfinite(m.ci_low)
    assert not results["fid"].higher_is_better and results["is"].higher_is_better


def test_bootstrap_is_seeded() -> None:
    gen, ref = _features(1), _features(2, shift=0.1)
    first = engine.image_metrics(gen, ref, ["fid", "is"], seed=5, n_bootstrap=15)
    again = engine.image_metrics(gen, ref, ["fid", "is"], seed=5, n_bootstrap=15)
    other = engine.image_metrics(gen, ref, ["fid", "is"], seed=6, n_bootstrap=15)
    assert [(m.ci_low, m.ci_high) for m in first] == [(m.ci_low, m.ci_high) for m in again]
    assert [(m.ci_low, m.ci_high) for m in first] != [(m.ci_low, m.ci_high) for m in other]


def test_reference_statistics_and_their_identity(tmp_path) -> None:
    from trecs_eval.metrics.fid import save_statistics

    gen, ref = _features(1), _features(2, shift=0.1)
    path = tmp_path / "ref.npz"
    save_statistics(path, features_to_statistics(ref.pool), IDENTITY)
    stats = engine.ReferenceStatistics.load(str(path))
    (fid,) = engine.image_metrics(gen, stats, ["fid"], seed=0, n_bootstrap=0)
    assert fid.value == pytest.approx(features_to_fid(gen.pool, ref.pool)[0], rel=1e-6)
    assert math.isnan(fid.ci_low)
    with pytest.raises(ConfigError, match="not saved statistics"):
        engine.image_metrics(gen, stats, ["kid"], seed=0)
    other = dataclasses.replace(IDENTITY, preprocessing="clean")
    with pytest.raises(IdentityMismatchError, match="preprocessing"):
        engine.image_metrics(_features(1, identity=other), stats, ["fid"], seed=0)
    with pytest.raises(IdentityMismatchError):
        engine.image_metrics(_features(1, identity=other), ref, ["kid"], seed=0)


def test_metric_names() -> None:
    assert parse_metric_names("fid, is,fid") == ["fid", "is"]
    with pytest.raises(UnknownNameError, match="did you mean 'kid'"):
        parse_metric_names("kdi")
    with pytest.raises(ConfigError, match="needs a reference"):
        engine.image_metrics(_features(1), None, ["fid"], seed=0)

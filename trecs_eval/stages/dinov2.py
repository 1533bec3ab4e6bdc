"""DINOv2-space metric: FD-DINOv2 (Stein et al. 2023), the Fréchet distance of DINOv2 features.

``FD = |μ_g - μ_r|² + tr(Σ_g + Σ_r - 2 (Σ_g Σ_r)^{1/2})`` on the CLS features of the ``dinov2``
extractor (dgm-eval preprocessing), computed by the FID core (:mod:`trecs_eval.metrics.fid`,
the engine's ``_fid``: same formula, same delta-method interval). FD-DINOv2 is *defined* on
ViT-L/14; a result from another backbone (``extractors.dinov2_arch = "vits14"``, the demo-sized
stand-in) or from random weights says so in a warning and in ``params["defines_fd_dinov2"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trecs_eval.metrics import engine, fid
from trecs_eval.metrics.intervals import ImageClusters
from trecs_eval.metrics.types import Metric, MetricInfo, MetricInputs, MetricResult

SPACE = "dinov2"


@dataclass(frozen=True)
class _Pool:
    """Features in the shape the FID core reads (``pool``, ``len``)."""

    pool: np.ndarray

    def __len__(self) -> int:
        return len(self.pool)


def _fd_dinov2(inputs: MetricInputs, params: Mapping[str, Any]) -> MetricResult:
    gen, ref = inputs.features[SPACE], inputs.reference[SPACE]
    fid.check_identity(gen.identity, ref.identity, "reference features")
    found = engine._fid(_Pool(gen.features), _Pool(ref.features), inputs.seed, params["n_resamples"],
                        params["alpha"], ImageClusters.of_inputs(inputs))
    identity = gen.identity.to_dict()
    defines = bool(identity.get("extra", {}).get("defines_fd_dinov2"))
    warnings = found.warnings if defines else (*found.warnings, (
        f"features from DINOv2 {identity.get('extra', {}).get('backbone')}"
        f"{' with random weights' if gen.identity.uncalibrated else ''}: FD-DINOv2 is defined on ViT-L/14 "
        "with the released weights; not comparable to published values"))
    return replace(found, name=INFO.name, extractor=identity, warnings=warnings,
                   status="uncalibrated" if gen.identity.uncalibrated else "ok",
                   params={**found.params, "defines_fd_dinov2": defines, "alpha": params["alpha"]})


INFO = MetricInfo("fd_dinov2", False, "squared DINOv2 feature units",
                  "Fréchet distance of DINOv2 ViT-L/14 CLS features (dgm-eval), as FID's formula",
                  display_name="FD-DINOv2", features=(SPACE,), feature_key="dinov2",
                  interval="delta method (influence functions) for FD at this n, symmetric; "
                           "n_resamples = 0: none", column_order=22, statistic="frechet",
                  estimator="set_statistic", missing="unavailable", family="image quality")
FD_DINOV2 = Metric(INFO, _fd_dinov2, params={"n_resamples": engine.DEFAULT_IMAGE_BOOTSTRAP,
                                             "alpha": engine.DEFAULT_ALPHA},
                   needs=frozenset({"reference"}))

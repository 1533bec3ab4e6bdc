"""One (system, metric) paired test of the regression gate, by the metric's declared estimator.

Each metric's declaration (:class:`trecs_eval.metrics.types.MetricInfo`) says what its number is
and how an item without a value is treated; the gate tests exactly that number:

* ``per_item_mean``: the ``samples.parquet`` column, paired over the items that have a value in
  **both** runs (an item with a value in one run only is dropped, and the row counts it);
  cluster-robust paired z-test (image clusters).
* ``pooled_ratio``: the per-item class counts (``feature_key`` of ``features/{system}.npz``),
  paired over the items with a gold map in both runs; the ratio's influence values
  (:mod:`trecs_eval.metrics.pooled`) summed per image: a cluster-level delta-method z-test of
  the number the run reports, not a mean of per-image ratios.
* ``set_statistic``: recomputed from ``features/*.npz`` where the declaration names a statistic
  with a paired test (``frechet``, ``kid``: delta method, generated and reference items clustered
  by image; ``inception_score``: paired t over the run's splits). Other set statistics
  (FID-inf, recall, coverage, CMMD) have no paired test: the row shows both runs' reported values.

A row that cannot be tested carries the reason; :mod:`reports.compare` decides whether that
fails the gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reports.load import LoadedRun
from trecs_eval.errors import InputError
from trecs_eval.metrics import intervals, pooled
from trecs_eval.metrics.inception_score import DEFAULT_SPLITS, logits_to_inception_score
from trecs_eval.metrics.intervals import PairedTest, mean_influence, paired_delta_test
from trecs_eval.metrics.resample import ReferenceSet
from trecs_eval.metrics.types import MetricResult
from trecs_eval.rundir import REFERENCE_FEATURES

# Set statistics recomputed from features/*.npz (the metric's declared ``MetricInfo.statistic`` on
# its ``feature_key`` array): FID and FD-DINOv2 are both "frechet"; "inception_score" needs no reference.
INFLUENCE = {"frechet": intervals.fid_influence, "kid": intervals.kid_influence}
FEATURE_STATISTICS = (*INFLUENCE, "inception_score")


@dataclass(frozen=True)
class Found:
    """A paired test's values on the paired items, and the items left out with the reason."""

    value_a: float
    value_b: float
    test: PairedTest
    n: int
    n_dropped: int = 0
    dropped: str = ""


def item_ids(run: LoadedRun, system: str) -> list[str]:
    """The system's item ids in the run's own order (IS splits depend on the order)."""
    if run.samples is not None:
        return list(run.samples.loc[run.samples["system"] == system, "item_id"])
    features = run.features(system)
    return list(features["item_ids"]) if features and "item_ids" in features else []


def clusters(run: LoadedRun, items: Sequence[str]) -> list[str]:
    """The image of each item (``narratives.jsonl``); an item without a narrative is its own image."""
    return [run.narratives[i].image_id if i in run.narratives else f"item:{i}" for i in items]


def reference_clusters(run: LoadedRun) -> list[str] | None:
    """Images of the reference items when they are evaluation items (``reference.kind = eval``):
    one image then appears once per narrative and its copies are one cluster."""
    reference = run.features(REFERENCE_FEATURES)
    if reference is None or "item_ids" not in reference:
        return None
    ids = [str(i) for i in reference["item_ids"]]
    return [run.narratives[i].image_id if i in run.narratives else f"ref:{i}" for i in ids]


def _aligned(run: LoadedRun, system: str, key: str, items: Sequence[str]) -> np.ndarray | None:
    features = run.features(system)
    if features is None or key not in features or "item_ids" not in features:
        return None
    position = {item: i for i, item in enumerate(features["item_ids"])}
    missing = [item for item in items if item not in position]
    if missing:
        raise InputError(f"no features for {len(missing)} items (e.g. {missing[:3]})",
                         path=str(run.features_path(system)), field="item_ids")
    return features[key][[position[item] for item in items]]


def _is_splits(logits: np.ndarray, result: MetricResult) -> np.ndarray:
    """Per-split IS of ``logits`` with the run's splits and seed (their mean is the run's IS)."""
    splits = int(result.params.get("splits", DEFAULT_SPLITS))
    seed = result.seed if result.seed is not None else 0
    return logits_to_inception_score(logits, seed=seed, splits=splits).split_scores


def _missing_key(a: LoadedRun, b: LoadedRun, system: str, key: str) -> str:
    which = " and ".join(name for name, run in (("A", a), ("B", b))
                         if run.features(system) is None or key not in (run.features(system) or {}))
    return f"features/{system}.npz with {key!r} missing in run {which}"


def _dropped_text(no_a: np.ndarray, no_b: np.ndarray, what: str) -> str:
    return (f"{int((no_a | no_b).sum())} items without {what} left out (run A: {int(no_a.sum())}, "
            f"run B: {int(no_b.sum())})")


def _too_few_clusters(labels: Sequence[str]) -> str:
    """Why a paired test is impossible (fewer than 2 images), or "" when it is possible."""
    found = len(set(labels))
    return "" if found >= 2 else f"{found} image(s) with a value in both runs; a paired test needs at least 2"


def _paired_items(a: LoadedRun, items: Sequence[str], no_a: np.ndarray, no_b: np.ndarray, what: str
                  ) -> tuple[np.ndarray, list[str], str] | str:
    """The items with a value in both runs (mask, ids, what was dropped), or why no test is possible."""
    keep = ~(no_a | no_b)
    kept = [item for item, k in zip(items, keep, strict=True) if k]
    dropped = _dropped_text(no_a, no_b, what) if not keep.all() else ""
    if too_few := _too_few_clusters(clusters(a, kept)):
        return f"{too_few}{'; ' + dropped if dropped else ''}"
    return keep, kept, dropped


def feature_test(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                 references: dict[str, ReferenceSet], alpha: float) -> Found | str:
    """A set statistic recomputed from the features (module doc), or why it cannot be."""
    info = a.info(metric)
    key = info.feature_key
    feats_a, feats_b = _aligned(a, system, key, items), _aligned(b, system, key, items)
    if feats_a is None or feats_b is None:
        return _missing_key(a, b, system, key)
    if info.statistic == "inception_score":
        result_a, result_b = a.metric(system, metric), b.metric(system, metric)
        assert result_a is not None and result_b is not None
        splits_a, splits_b = _is_splits(feats_a, result_a), _is_splits(feats_b, result_b)
        test = intervals.paired_split_test(splits_a, splits_b, alpha)
        return Found(float(splits_a.mean()), float(splits_b.mean()), test, len(items))
    if too_few := _too_few_clusters(clusters(a, items)):
        return too_few
    if key not in references:  # one ReferenceSet per array: its factor / kernel terms are computed once
        reference = a.features(REFERENCE_FEATURES)
        if reference is None or key not in reference:
            return f"features/{REFERENCE_FEATURES}.npz with {key!r} missing"
        references[key] = ReferenceSet(reference[key])
    influence = INFLUENCE[info.statistic]
    found_a, found_b = influence(feats_a, references[key]), influence(feats_b, references[key])
    test = paired_delta_test(found_a, found_b, alpha, clusters(a, items),
                             reference_clusters=reference_clusters(a))
    return Found(found_a.value, found_b.value, test, len(items))


def _sample_values(run: LoadedRun, system: str, metric: str, items: Sequence[str]) -> np.ndarray | None:
    if run.samples is None or metric not in run.per_sample_columns:
        return None
    rows = run.samples[run.samples["system"] == system].set_index("item_id")
    return rows.loc[list(items), metric].to_numpy(dtype=np.float64)


def sample_test(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                alpha: float) -> Found | str:
    """A per-item mean over the items with a value in both runs (module doc)."""
    va, vb = _sample_values(a, system, metric, items), _sample_values(b, system, metric, items)
    if va is None or vb is None:
        which = " and ".join(name for name, v in (("A", va), ("B", vb)) if v is None)
        return f"no samples.parquet column {metric!r} in run {which}"
    paired = _paired_items(a, items, ~np.isfinite(va), ~np.isfinite(vb), "a value")
    if isinstance(paired, str):
        return paired
    keep, kept, dropped = paired
    test = paired_delta_test(mean_influence(va[keep]), mean_influence(vb[keep]), alpha, clusters(a, kept))
    return Found(float(va[keep].mean()), float(vb[keep].mean()), test, len(kept),
                 int((~keep).sum()), dropped)


def pooled_test(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                alpha: float) -> Found | str:
    """A pooled ratio over the items with a gold map in both runs, clustered by image (module doc)."""
    info = a.info(metric)
    counts_a, counts_b = (_aligned(run, system, info.feature_key, items) for run in (a, b))
    if counts_a is None or counts_b is None:
        return _missing_key(a, b, system, info.feature_key)
    paired = _paired_items(a, items, ~pooled.has_value(counts_a), ~pooled.has_value(counts_b), "a gold map")
    if isinstance(paired, str):
        return paired
    keep, kept, dropped = paired
    found_a = pooled.pooled_influence(counts_a[keep], info.statistic)
    found_b = pooled.pooled_influence(counts_b[keep], info.statistic)
    test = paired_delta_test(found_a, found_b, alpha, clusters(a, kept))
    return Found(found_a.value, found_b.value, test, len(kept), int((~keep).sum()), dropped)


def paired_test(a: LoadedRun, b: LoadedRun, system: str, metric: str, items: Sequence[str],
                references: dict[str, ReferenceSet], alpha: float) -> Found | str | None:
    """The declared estimator's paired test; None when the metric has none (a set statistic
    without a paired test); a string when it cannot be computed."""
    info = a.info(metric)
    estimator = info.resolved_estimator
    if estimator == "per_item_mean":
        return sample_test(a, b, system, metric, items, alpha)
    if estimator == "pooled_ratio":
        return pooled_test(a, b, system, metric, items, alpha)
    if info.statistic in FEATURE_STATISTICS:
        return feature_test(a, b, system, metric, items, references, alpha)
    return None

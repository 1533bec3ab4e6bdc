"""Build a small synthetic run directory that follows the run-directory contract (trecs_eval/results.py).

Everything is drawn from ``numpy.random.default_rng`` with explicit seeds: the per-item features
and scores of a system depend only on (seed, system, item index), so two runs built with the
same seed are identical item by item, and ``feature_shift`` degrades one system's Inception
features by a constant offset (a "shifted set": FID must rise).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from trecs_eval.data.localized_narratives import write_narratives_jsonl
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint
from trecs_eval.metrics.types import MetricResult
from trecs_eval.results import RunResults, SystemInfo, write_results

HOSTILE_CAPTION = 'In this image a <script>console.error("xss-executed")</script> dog & a "cat" <b>sit</b>.'
INCEPTION_IDENTITY = {"name": "inception-v3-compat", "weights_sha256": "0" * 64, "layer": "pool3",
                      "preprocessing": "tf1", "dtype": "float32"}
CLIP_IDENTITY = {"name": "open_clip:ViT-B-32", "weights_sha256": "1" * 64, "preprocessing": "clip"}
DEFAULT_VALUES = {  # (system index) -> value; hand-picked so each column has a clear best
    "is": (3.5, 2.8), "fid": (40.0, 55.5), "r_precision": (0.42, 0.61), "kid": (0.021, 0.034),
    "clip_score": (27.1, 25.3), "trace_canvas_accuracy": (0.48, 0.30),
}
HIGHER_IS_BETTER = {"is": True, "fid": False, "r_precision": True, "kid": False, "clip_score": True,
                    "trace_canvas_accuracy": True}
PER_LABEL = {"sky-other": 0.81, "grass": 0.64, "person": 0.52, "dog": 0.33, "tree": 0.47}


def _rng(seed: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(str(p).encode()) for p in parts)])


def _narrative(index: int, seed: int, hostile: bool, per_image: int = 1) -> Narrative:
    rng = _rng(seed, "narrative", index)
    caption = HOSTILE_CAPTION if hostile else f"In this image we can see a dog number {index} on the grass."
    words = caption.split(" ")
    half = len(words) // 2
    utterances = (TimedUtterance(" ".join(words[:half]), 0.0, 1.0),
                  TimedUtterance(" ".join(words[half:]), 1.0, 2.0))
    t = np.linspace(0.0, 2.0, 20)
    xy = np.clip(rng.uniform(0.1, 0.9, 2) + np.cumsum(rng.normal(0, 0.04, (20, 2)), axis=0), -0.02, 1.02)
    trace = tuple(TracePoint(float(x), float(y), float(tt)) for (x, y), tt in zip(xy, t, strict=True))
    image, annotator = (index, 7) if per_image == 1 else (index // per_image, index % per_image)
    return Narrative("synthetic", f"img{image:04d}", annotator, caption, utterances, (trace,))


def _picture(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(0, 256, 3)
    grad = np.linspace(0, 1, size)[None, :, None] * rng.integers(-80, 80, 3)
    noise = rng.normal(0, 20, (size, size, 3))
    return np.clip(base + grad + noise, 0, 255).astype(np.uint8)


def _canvas(rng: np.random.Generator, size: int) -> np.ndarray:
    canvas = np.full((size, size), 157, dtype=np.uint8)  # sky-other
    canvas[size // 2:] = 124  # grass
    x0, y0 = rng.integers(0, size // 2, 2)
    canvas[y0:y0 + size // 3, x0:x0 + size // 3] = 18  # dog
    return canvas


def _metrics(systems: Sequence[str], status: str, values: dict[str, Sequence[float]], n: int,
             seed: int) -> tuple[MetricResult, ...]:
    out = []
    for name, per_system in values.items():
        for s, system in enumerate(systems):
            value = per_system[s % len(per_system)]
            half = abs(value) * 0.05
            params = {"per_label": dict(PER_LABEL)} if name == "trace_canvas_accuracy" else {}
            out.append(MetricResult(name, value, HIGHER_IS_BETTER.get(name, True), n, value - half,
                                    value + half, math.nan, system, dict(INCEPTION_IDENTITY), seed,
                                    status, (), params))
    return tuple(out)


def make_run_dir(
    run_dir: Path,
    *,
    systems: Sequence[str] = ("trecs", "retrieval"),
    n_items: int = 24,
    seed: int = 0,
    image_size: int = 64,
    feature_dims: tuple[int, int, int] = (64, 32, 16),
    n_reference: int = 80,
    feature_shift: dict[str, float] | None = None,
    score_shift: dict[str, float] | None = None,
    uncalibrated: bool = False,
    hostile_item: bool = True,
    values: dict[str, Sequence[float]] | None = None,
    inception_identity: dict[str, str] | None = None,
    created: str = "2026-11-25T18:00:00+00:00",
    git_commit: str = "abc1234",
    item_offset: int = 0,
    narratives_per_image: int = 1,
    reference_from_items: bool = False,
) -> Path:
    """Write a complete synthetic run directory at ``run_dir`` and return it.

    ``feature_shift[system]`` adds a constant to that system's Inception pool features;
    ``score_shift[system]`` adds a constant to its per-sample clip_score; ``item_offset``
    shifts item ids (a run over a different item set); ``narratives_per_image`` > 1 gives
    consecutive items one image (clusters); ``reference_from_items`` makes the reference set the
    items' own images (``reference.kind = "eval"``: one row per item, identical within an image).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    feature_shift, score_shift = feature_shift or {}, score_shift or {}
    indices = range(item_offset, item_offset + n_items)
    narratives = [_narrative(i, seed, hostile_item and i == item_offset, narratives_per_image)
                  for i in indices]
    write_narratives_jsonl(run_dir / "narratives.jsonl", narratives)
    rows = []
    for narrative, i in zip(narratives, indices, strict=True):
        ref = Path("reference") / f"{narrative.item_id}.png"
        (run_dir / ref).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_picture(_rng(seed, "reference", i), image_size)).save(run_dir / ref)
        for system in systems:
            rng = _rng(seed, "sample", system, i)
            image = Path("images") / system / f"{narrative.item_id}.png"
            canvas = Path("canvases") / system / f"{narrative.item_id}.png"
            for path in (image, canvas):
                (run_dir / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_picture(rng, image_size)).save(run_dir / image)
            Image.fromarray(_canvas(rng, image_size)).save(run_dir / canvas)
            rows.append({
                "item_id": narrative.item_id, "system": system, "image_path": str(image),
                "canvas_path": str(canvas), "reference_path": str(ref), "narrative": narrative.caption,
                "n_words": len(narrative.words), "n_trace_points": 20,
                "clip_score": float(rng.uniform(20, 35)) + score_shift.get(system, 0.0),
                "r_precision": float(rng.integers(0, 2)),
                "trace_canvas_accuracy": float(rng.uniform(0, 1)),
            })
    pd.DataFrame(rows).to_parquet(run_dir / "samples.parquet", index=False)
    _write_features(run_dir, systems, [n.item_id for n in narratives], indices, seed, feature_dims,
                    n_reference, feature_shift)
    if reference_from_items:
        images = [int(n.image_id[3:]) for n in narratives]
        reference = _item_features(seed, "reference", images, feature_dims, 0.0)
        np.savez(run_dir / "features" / "reference.npz", item_ids=np.array([n.item_id for n in narratives]),
                 inception_pool=reference["inception_pool"], inception_logits=reference["inception_logits"])
    identity = inception_identity or INCEPTION_IDENTITY
    status = "uncalibrated" if uncalibrated else "ok"
    results = RunResults(
        run_id=run_dir.name, created=created, config_hash="f" * 64,
        config={"seed": seed, "systems": list(systems), "metrics": list(HIGHER_IS_BETTER)},
        dataset={"name": "synthetic", "n_items": n_items},
        systems=tuple(SystemInfo(s, s, "1.0", {}, {"canvas": True}, n_items) for s in systems),
        metrics=_metrics(systems, status, values or DEFAULT_VALUES, n_items, seed),
        extractors={"inception": dict(identity), "clip": dict(CLIP_IDENTITY)},
        versions={"trecs_eval": "0.1.0", "torch": "2.14.1"}, git_commit=git_commit, seed=seed,
        timings={"generate": 1.5, "features": 2.25, "metrics": 0.5}, uncalibrated=uncalibrated,
    )
    write_results(run_dir, results)
    return run_dir


def _write_features(run_dir: Path, systems: Sequence[str], item_ids: list[str], indices: range, seed: int,
                    dims: tuple[int, int, int], n_reference: int, shift: dict[str, float]) -> None:
    features_dir = run_dir / "features"
    features_dir.mkdir(parents=True, exist_ok=True)
    for system in systems:
        arrays = _item_features(seed, system, indices, dims, shift.get(system, 0.0))
        np.savez(features_dir / f"{system}.npz", item_ids=np.array(item_ids), **arrays)
    reference = _item_features(seed, "reference", range(n_reference), dims, 0.0)
    np.savez(features_dir / "reference.npz", inception_pool=reference["inception_pool"],
             inception_logits=reference["inception_logits"])


def _item_features(seed: int, system: str, indices: Sequence[int], dims: tuple[int, int, int],
                   shift: float) -> dict[str, np.ndarray]:
    pool, logits, clip = dims
    rows = [_rng(seed, "features", system, i) for i in indices]
    return {
        "inception_pool": np.stack([r.normal(0.0, 1.0, pool) for r in rows]) + shift,
        "inception_logits": np.stack([r.normal(0.0, 2.0, logits) for r in rows]),
        "clip_image": np.stack([r.normal(0.0, 1.0, clip) for r in rows]),
    }


# The demo's shape: real Inception (FID, KID, PRDC: ok), no classifier (IS: unavailable), random CLIP
# (CLIPScore, R-precision: uncalibrated), canvas metrics for the TReCS systems only (not applicable
# to the others), segmenter metrics for every system, and one failure.
DEMO_SYSTEMS = ("trecs", "trecs-oracle", "trecs-no-trace", "retrieval", "real", "noise")
CANVAS_SYSTEMS = DEMO_SYSTEMS[:3]
CANVAS_METRICS = ("trace_canvas_accuracy", "canvas_pixel_accuracy", "canvas_miou")
RANDOM_CLIP_METRICS = ("clip_score", "r_precision")
DEMO_METRICS = ("fid", "kid", "is", *RANDOM_CLIP_METRICS, *CANVAS_METRICS, "precision", "recall",
                "density", "coverage",
                "trace_hit_rate", "seg_trace_accuracy", "seg_pixel_accuracy", "seg_miou")
IS_UNAVAILABLE_WHY = ("IS unavailable: these Inception weights (nvidia-torchscript) have no 1008-way "
                      "classifier; pass full torch-fidelity weights for IS")
DENSITY_FAILED_WHY = "density failed: 3 generated items have no neighbour within the k-NN radius"
RANDOM_CLIP_IDENTITY = {**CLIP_IDENTITY, "weights_sha256": "2" * 64, "uncalibrated": True}


def make_demo_shaped_run(run_dir: Path, *, n_items: int = 6, seed: int = 0) -> Path:
    """A run directory shaped like the demo's results (see the constants above)."""
    from dataclasses import replace

    from reports.load import declared_info
    from trecs_eval.results import read_results

    rng = _rng(seed, "demo-values")
    values = {name: tuple(float(v) for v in rng.uniform(0.2, 0.9, len(DEMO_SYSTEMS)))
              for name in DEMO_METRICS}
    values["fid"] = (84.1, 80.2, 88.8, 120.5, 12.3, 470027.9)  # noise far off: a log axis
    make_run_dir(run_dir, systems=DEMO_SYSTEMS, n_items=n_items, seed=seed, values=values)
    results = read_results(run_dir)
    metrics = []
    for m in results.metrics:
        m = replace(m, higher_is_better=declared_info(m.name).higher_is_better)
        if m.name in CANVAS_METRICS and m.system not in CANVAS_SYSTEMS:
            continue  # the run holds no result: the metric does not apply
        if m.name == "is":
            m = replace(m, value=math.nan, ci_low=math.nan, ci_high=math.nan, status="unavailable",
                        warnings=(IS_UNAVAILABLE_WHY,))
        elif m.name in RANDOM_CLIP_METRICS:
            m = replace(m, status="uncalibrated", extractor=dict(RANDOM_CLIP_IDENTITY))
        elif m.name == "density" and m.system == "noise":
            m = replace(m, value=math.nan, ci_low=math.nan, ci_high=math.nan, status="failed",
                        warnings=(DENSITY_FAILED_WHY,))
        metrics.append(m)
    systems = tuple(replace(s, capabilities={"returns_canvas": s.name in CANVAS_SYSTEMS})
                    for s in results.systems)
    config = {**results.config, "metrics": [{"name": n, "params": {}} for n in DEMO_METRICS]}
    write_results(run_dir, replace(results, metrics=tuple(metrics), systems=systems, uncalibrated=True,
                                   config=config,
                                   extractors={**results.extractors, "clip": dict(RANDOM_CLIP_IDENTITY)}))
    return run_dir

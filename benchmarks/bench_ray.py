"""The demo's feature stage on the local engine and on a local Ray cluster with 1 and 2 workers.

    python benchmarks/bench_ray.py                          # 96 demo-sized (128 px) toyworld images
    python benchmarks/bench_ray.py --inception-weights W    # another weights file (default: the
                                                            # standard ones if installed, else random)

Inception-v3 features (the demo's dominant extractor: one forward pass per image serves FID, KID
and IS) of the same images, cold feature caches, same weights and torch thread count. Printed
(measured, nothing asserted):

  ray start-up        ray.init of a local 2-CPU cluster (no dashboard)
  local               the local engine (model load + forward passes + cache writes)
  ray, k workers      the Ray engine with k feature actors (actor start, model load per actor,
                      forward passes, results through the object store, cache writes by the driver)
                      and whether its features are bit-identical to the local engine's
  paper estimate      LN-COCO val (8,573 narratives) x 4 generated systems + reference on N GPUs,
                      from the per-image costs assumed below (not measured here: no GPU)

On 2 cores the local engine already uses both (torch threads = cores), so Ray cannot be faster
here: the ratio measures its overhead. Ray pays off when the cluster has more devices than one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LN_COCO_VAL = 8_573
PAPER_SYSTEMS = 4
# Assumed per-image costs on one A100-class GPU (from public model cards and reports, not measured):
DIFFUSION_S_PER_IMAGE = 2.0  # SD-1.5-class, 512 px, 50 steps, fp16
FEATURES_IMG_PER_S = 800.0  # Inception + CLIP ViT-B/32 forward on GPU; JPEG decode bound


def make_images(directory: Path, n: int) -> list[Path]:
    from trecs_eval.data.toyworld import write_toyworld

    write_toyworld(directory, n=n, seed=0, image_size=128, shifted=False, progress=False)
    return sorted((directory / "images").glob("*.png"))


def weights_file(given: str | None, directory: Path) -> str:
    """The given file, else the standard weights if installed (``weights`` extra), else calibrated
    random weights made here (minutes)."""
    if given:
        return given
    from trecs_eval.errors import TrecsEvalError
    from trecs_eval.features.calibration import make_calibrated_inception_weights
    from trecs_eval.features.weights import resolve_inception_weights

    try:
        return str(resolve_inception_weights().path)
    except TrecsEvalError:
        pass

    path = directory / "inception-calibrated-seed0.pth"
    started = time.perf_counter()
    make_calibrated_inception_weights(path, 0)
    print(f"(made calibrated random Inception weights in {time.perf_counter() - started:.0f} s)", flush=True)
    return str(path)


def extract(paths: list[Path], weights: str, cache: Path, batch_size: int, engine: object | None
            ) -> tuple[float, np.ndarray]:
    from trecs_eval.features.cache import FeatureCache
    from trecs_eval.metrics.engine import ExtractorSettings, FeatureExtractors

    settings = ExtractorSettings(device="cpu", inception_weights=weights, batch_size=batch_size,
                                 progress=False)
    started = time.perf_counter()
    extractors = FeatureExtractors(settings, FeatureCache(cache))
    if engine is not None:
        extractors = engine.bind_extractors(extractors)  # type: ignore[attr-defined]
    pool = extractors.inception(paths).pool
    seconds = time.perf_counter() - started
    if engine is not None:
        engine.close()  # type: ignore[attr-defined]
    return seconds, pool


def paper_estimate() -> None:
    images = LN_COCO_VAL * (PAPER_SYSTEMS + 1)
    for gpus in (1, 4, 8, 16):
        generate_h = LN_COCO_VAL * PAPER_SYSTEMS * DIFFUSION_S_PER_IMAGE / gpus / 3600
        features_h = images / FEATURES_IMG_PER_S / gpus / 3600
        print(f"paper estimate       LN-COCO x {PAPER_SYSTEMS} systems on {gpus:2d} GPUs: generation "
              f"{generate_h:6.2f} h + features {features_h * 60:5.1f} min (assumed "
              f"{DIFFUSION_S_PER_IMAGE} s/img diffusion, {FEATURES_IMG_PER_S:.0f} img/s features per GPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--inception-weights", default=None)
    args = parser.parse_args()
    import ray

    from trecs_eval.config import ExecutionSpec
    from trecs_eval.execution.ray_cluster import local_cluster_options
    from trecs_eval.execution.ray_engine import RayEngine

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine is noisy)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_images(root / "toy", args.n)
        weights = weights_file(args.inception_weights, root)
        local_s, local_pool = extract(paths, weights, root / "local.sqlite", args.batch_size, None)
        print(f"local                {len(paths)} images {local_s:7.2f} s  {len(paths) / local_s:6.1f} img/s",
              flush=True)
        started = time.perf_counter()
        ray.init(**local_cluster_options(2))
        startup = time.perf_counter() - started
        print(f"ray start-up         {startup:7.2f} s (local 2-CPU cluster)", flush=True)
        for workers in (1, 2):
            engine = RayEngine(ExecutionSpec(engine="ray", workers=workers, shard_batches=1), "cpu")
            ray_s, pool = extract(paths, weights, root / f"ray{workers}.sqlite", args.batch_size, engine)
            label = f"ray, {workers} worker{'s' if workers > 1 else ''}"
            print(f"{label:20s} {len(paths)} images {ray_s:7.2f} s  {len(paths) / ray_s:6.1f} img/s  "
                  f"local/ray {local_s / ray_s:5.2f}x  bit-identical "
                  f"{np.array_equal(pool, local_pool)}", flush=True)
        ray.shutdown()
    paper_estimate()


if __name__ == "__main__":
    main()

"""Faster Inception forwards on CPU, and whether they keep the numbers.

    python benchmarks/bench_forward_modes.py               # parity set of 64 toyworld scenes
    python benchmarks/bench_forward_modes.py --n 16        # a busy machine
    python benchmarks/bench_forward_modes.py --compile     # also torch.compile (slow to compile)

For each mode: img/s of the forward alone (in-memory 299 px batches of the parity set) and, on it
(two halves of toyworld scenes), the largest |feature difference| and the FID relative difference
against the reference path (torch.no_grad, contiguous NCHW, batch 32, glibc's default malloc).
A mode may become the default only if ``FID rel diff <= 1e-6`` (``DEFAULT_MODE_FID_REL_TOL``);
otherwise it can only be an explicit opt-in recorded in the extractor identity.
The glibc malloc mode is process-wide and cannot be undone: it is measured after the others.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trecs_eval.data.toyworld import generate_scene
from trecs_eval.features.images import preprocess
from trecs_eval.features.inception import inception_forward, keep_malloc_buffers, load_inception
from trecs_eval.features.weights import resolve_inception_weights
from trecs_eval.metrics.fid import features_to_fid

DEFAULT_MODE_FID_REL_TOL = 1e-6


def parity_images(n: int) -> torch.Tensor:
    """(n, 3, 299, 299) float tf1-preprocessed toyworld scenes (seed 11)."""
    return torch.stack([preprocess(generate_scene(i, seed=11, image_size=128).image, "tf1")
                        for i in range(n)])


def features(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch: int
             ) -> tuple[np.ndarray, float]:
    """Pool features of ``images`` and the img/s of that pass (after a 2-image warm-up)."""
    forward(images[:2])  # first-call allocations, oneDNN primitive creation
    start = time.perf_counter()
    feats = np.concatenate([forward(images[i:i + batch]).float().numpy()
                            for i in range(0, len(images), batch)])
    return feats, len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="parity images (two halves; timed too)")
    parser.add_argument("--inception-weights", default=None, help="default: the demo's (extra or release)")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    weights = resolve_inception_weights(args.inception_weights)
    model = load_inception(weights, torch.device("cpu"))
    images = parity_images(args.n)
    print(f"# weights {weights.format} {weights.sha256[:12]}, {args.n} parity images, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}", flush=True)

    def plain(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return inception_forward(model, x, logits=False)[0]

    def inference(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return inception_forward(model, x, logits=False)[0]

    reference, _ = features(plain, images, 32)
    half = args.n // 2
    fid_ref = features_to_fid(reference[:half], reference[half:])[0]

    def show(name: str, forward: Callable[[torch.Tensor], torch.Tensor], batch: int = 32) -> None:
        feats, speed = features(forward, images, batch)
        fid = features_to_fid(feats[:half], feats[half:])[0]
        rel = abs(fid - fid_ref) / fid_ref
        verdict = "may be default" if rel <= DEFAULT_MODE_FID_REL_TOL else "opt-in only"
        print(f"{name:34s} {speed:6.2f} img/s  max|dfeat| "
              f"{np.abs(feats - reference).max():.1e}  FID rel diff {rel:.1e}  ({verdict})", flush=True)

    show("reference (no_grad, batch 32)", plain)
    show("inference_mode", inference)
    for batch in (8, 16):
        show(f"inference_mode, batch {batch}", inference, batch)
    cl_model = load_inception(weights, torch.device("cpu")).to(memory_format=torch.channels_last)

    def channels_last(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return inception_forward(cl_model, x.contiguous(memory_format=torch.channels_last),
                                     logits=False)[0]

    show("channels_last", channels_last)
    with torch.no_grad():  # freeze folds BatchNorm into the convs; then oneDNN layouts/fusions
        traced = torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(_PoolOnly(model).eval(), images[:2])))
    show("oneDNN (jit freeze + optimize_for_inference)", lambda x: _no_grad(traced, x))
    if args.compile:
        compiled = torch.compile(_PoolOnly(model).eval())
        show("torch.compile (inductor)", lambda x: _no_grad(compiled, x))
    keep_malloc_buffers()
    show("inference_mode + glibc malloc kept", inference)
    show("... + channels_last", channels_last)


class _PoolOnly(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return inception_forward(self.model, x, logits=False)[0]  # type: ignore[arg-type]


def _no_grad(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


if __name__ == "__main__":
    main()

"""Model-based systems: images/s of ``diffusers`` (SD), ``gligen`` and the ``spade`` / ``ccfpse``
synthesizers, timed in one run on the same toyworld items.

CPU mode (default): tiny random models of the real classes (:mod:`tests.diffusion_support`, and
SPADE / CC-FPSE at a small ``ngf``) at 64 px, 2 denoising steps: it measures the plumbing (prompt
policy, boxes, per-item generators, PNG-ready uint8), not a real model's cost. GPU mode
(``--device cuda``): 512 px, float16, 25 steps, with real weights when given (``--sd``,
``--gligen`` local pipeline folders; ``--spade``, ``--ccfpse`` converted checkpoints), else the
tiny models at that size. Measured, never asserted. Synthesizers time the network alone on the
canvas of each item (gold label map + instances), which is what they add to ``trecs``.

    .venv/bin/python benchmarks/bench_generators.py                    # CPU, 64 px, n=8
    .venv/bin/python benchmarks/bench_generators.py --device cuda --size 512 --steps 25 \\
        --sd models/stable-diffusion-v1-5 --gligen models/gligen-1-4-generation-text-box
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from baselines.diffusers_t2i import DiffusersGenerator  # noqa: E402
from baselines.gligen import GligenGenerator  # noqa: E402
from reference_pipeline.synthesize import ccfpse, spade  # noqa: E402
from tests.diffusion_support import build_tiny_pipeline  # noqa: E402
from trecs_eval.data.evalset import EvalItem, load_toyworld, read_gold_segmentation  # noqa: E402
from trecs_eval.data.toyworld import write_toyworld  # noqa: E402
from trecs_eval.generation.protocol import GeneratorContext  # noqa: E402


def rate(run: Callable[[Sequence[EvalItem]], object], items: list[EvalItem], repeats: int) -> float:
    """Best of ``repeats`` passes over ``items`` after one untimed warm-up item (images/s)."""
    run(items[:1])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(items)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


Synth = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def synthesizer_run(synth: Synth, canvases: dict[str, np.ndarray]) -> Callable[[Sequence[EvalItem]], object]:
    """The synthesizer on each item's gold label map (its labels double as instance ids: edges at
    label borders)."""
    return lambda items: [synth(canvases[it.item_id], canvases[it.item_id].astype(np.int32), 0)
                          for it in items]


def network_checkpoints(folder: Path, size: int, ngf: int) -> dict[str, Path]:
    """Random SPADE (NVlabs COCO layout: conv fc, batch norm) and CC-FPSE checkpoints at ``size``."""
    torch.manual_seed(0)
    paths = {"spade": folder / "spade.pt", "ccfpse": folder / "ccfpse.pt"}
    spade.save_checkpoint(spade.SPADEGenerator(spade.SpadeConfig(ngf=ngf, crop_size=size)), paths["spade"])
    ccfpse.save_checkpoint(ccfpse.CondConvGenerator(ccfpse.CcfpseConfig(ngf=ngf, crop_size=size)),
                           paths["ccfpse"])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--size", type=int, default=None, help="default: 64 on CPU, 512 on CUDA")
    parser.add_argument("--steps", type=int, default=None, help="default: 2 on CPU, 25 on CUDA")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4, help="items per diffusers call (batched = true)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ngf", type=int, default=8, help="SPADE / CC-FPSE width of the random networks")
    for name in ("sd", "gligen", "spade", "ccfpse"):
        parser.add_argument(f"--{name}", type=Path, default=None, help=f"real {name} weights (default: tiny)")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    size, steps = args.size or (512 if cuda else 64), args.steps or (25 if cuda else 2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_toyworld(root / "toy", n=args.n, seed=0, image_size=size, shifted=False, progress=False)
        items = list(load_toyworld(root / "toy").items)
        canvases = {it.item_id: read_gold_segmentation(it) for it in items}
        models = {k: getattr(args, k) or build_tiny_pipeline(root / k, k) for k in ("sd", "gligen")}
        nets = network_checkpoints(root, size, args.ngf)
        context = GeneratorContext(device=args.device, image_size=size)
        common = {"text_policy": "whole_utterances", "steps": steps, "image_size": size}
        sd = DiffusersGenerator({"model": str(models["sd"]), "batched": True, **common}, context)
        gligen = GligenGenerator({"model": str(models["gligen"]), "tags": "oracle", **common}, context)
        runs = {
            "diffusers (SD)": lambda its: [sd.generate(its[i:i + args.batch], 0)
                                           for i in range(0, len(its), args.batch)],
            "gligen (oracle boxes)": lambda its: gligen.generate(its, 0),
            "spade synthesizer": synthesizer_run(
                spade.SpadeSynthesizer(args.spade or nets["spade"], args.device), canvases),
            "ccfpse synthesizer": synthesizer_run(
                ccfpse.CcfpseSynthesizer(args.ccfpse or nets["ccfpse"], args.device), canvases),
        }
        rates = {name: rate(run, items, args.repeats) for name, run in runs.items()}
    real = any(getattr(args, k) for k in ("sd", "gligen", "spade", "ccfpse"))
    kind = "real/tiny" if real else "tiny random"
    print(f"{kind} models, {args.device}, {size} px, {steps} steps, {sd.dtype}, n={len(items)}, "
          f"torch threads {torch.get_num_threads()}")
    base = rates["diffusers (SD)"]
    for name, value in rates.items():
        print(f"  {name:24s} {value:8.2f} images/s   ({value / base:5.2f}x diffusers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time trecs-eval's FID/KID/IS against torch-fidelity in one run, and print ratios.

    python benchmarks/bench_metrics.py              # 2 x 1000 PNG images at 256 px
    python benchmarks/bench_metrics.py --n 100      # quick check
    python benchmarks/bench_metrics.py --memory     # peak RSS while extracting 10,000 images

Same weights file (``--inception-weights``, or a calibrated random one made here), same torch
thread count, same images, one process. Lines printed, with their targets:

  cold FID+KID+IS      torch-fidelity calculate_metrics vs ours, empty caches     (>= 1.1x)
  end-to-end img/s     our extraction (list, hash, cache, decode, resize, forward) vs the bare
                       forward of the same network on in-memory uint8 batches       (>= 90 %)
  forward layout       FID (our formula) from that bare NCHW forward's features vs from our
                       extraction's (NHWC on CPU): the default-mode rule            (<= 1e-6)
  warm re-run          ours with a warm feature cache vs torch-fidelity cold      (>= 20x)
  FID from statistics  2048-d: scipy.linalg.sqrtm formula vs our eigh             (>= 5x)
  peak RSS (--memory)  extracting N images streamed from disk                     (< 2 GB)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trecs_eval.features.calibration import make_calibrated_inception_weights
from trecs_eval.features.images import list_images

SEED = 0


def write_images(directory: Path, n: int, px: int, seed: int) -> None:
    """Seeded smooth colour fields with noise: PNGs of realistic size, cheap to make."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cells = rng.integers(2, 9)
        field = rng.random((cells, cells, 3)) * 255
        reps = -(-px // cells)
        img = np.kron(field, np.ones((reps, reps, 1)))[:px, :px] + rng.normal(0, 20, (px, px, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(directory / f"{i:05d}.png")


def line(what: str, peer: str, peer_s: float, ours: str, ours_s: float, target: str) -> None:
    print(f"{what:22s} {peer} {peer_s:9.2f} s | {ours} {ours_s:9.2f} s | ratio {peer_s / ours_s:6.2f}x"
          f"  (target {target})", flush=True)


def ours_metrics(a: Path, b: Path, weights: Path, cache_dir: Path, batch_size: int, cold: bool,
                 layout: str) -> tuple[float, float, dict[str, float]]:
    """Our FID+KID+IS (no bootstrap, as torch-fidelity has none): total and extraction seconds."""
    from trecs_eval.features.cache import FeatureCache
    from trecs_eval.metrics import engine

    start = time.perf_counter()
    settings = engine.ExtractorSettings(device="cpu", inception_weights=str(weights),
                                        batch_size=batch_size, progress=False, inception_layout=layout)
    extractors = engine.FeatureExtractors(settings, cache=FeatureCache(cache_dir / "f.sqlite"))
    if cold:  # load the weights outside the extraction timing (a warm run never loads them)
        assert extractors.inception_extractor.model is not None
    extract_start = time.perf_counter()
    gen, ref = extractors.inception(list_images(a)), extractors.inception(list_images(b))
    extract_s = time.perf_counter() - extract_start
    results = engine.image_metrics(gen, ref, ["fid", "kid", "is"], seed=SEED, n_bootstrap=0)
    return time.perf_counter() - start, extract_s, {m.name: m.value for m in results}


def bare_forward(paths: list[Path], weights: Path, batch_size: int) -> tuple[float, np.ndarray]:
    """img/s of torch-fidelity's Inception forward alone (its TF1 resize included, as in the
    network; NCHW) on uint8 batches decoded into memory beforehand: no I/O, no decode, no cache.
    Also its pool features, to check our layout against it."""
    from trecs_eval.features.images import decode_rgb
    from trecs_eval.features.inception import load_inception
    from trecs_eval.features.weights import resolve_inception_weights

    model = load_inception(resolve_inception_weights(weights), torch.device("cpu"))
    batches = [torch.stack([torch.from_numpy(decode_rgb(p)).permute(2, 0, 1)
                            for p in paths[i:i + batch_size]])
               for i in range(0, len(paths), batch_size)]
    pool = []
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            pool.append(model(batch)[0].numpy())
    return len(paths) / (time.perf_counter() - start), np.concatenate(pool)


def fid_from_statistics(dim: int) -> None:
    import scipy.linalg

    from trecs_eval.metrics.fid import GaussianStatistics, statistics_to_fid

    rng = np.random.default_rng(SEED)
    stats = []
    for _ in range(2):
        x = rng.standard_normal((dim + dim // 2, dim)) @ (np.eye(dim) + 0.1 * rng.standard_normal((dim, dim)))
        stats.append(GaussianStatistics(x.mean(0), np.cov(x, rowvar=False), len(x)))
    start = time.perf_counter()
    ours, _ = statistics_to_fid(*stats)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    a, b = stats
    diff = a.mu - b.mu
    peer = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(
        scipy.linalg.sqrtm(a.sigma @ b.sigma)).real
    peer_s = time.perf_counter() - start
    line(f"FID from {dim}-d stats", "scipy sqrtm", peer_s, "ours eigh", ours_s, ">= 5x")
    print(f"{'':22s} values: sqrtm {peer:.9g}, ours {ours:.9g}, rel diff {abs(peer - ours) / peer:.1e}")


def memory_mode(args: argparse.Namespace, root: Path, weights: Path) -> None:
    from trecs_eval.features.cache import FeatureCache
    from trecs_eval.metrics import engine

    write_images(root / "m", args.n, args.px, seed=3)
    settings = engine.ExtractorSettings(device="cpu", inception_weights=str(weights), progress=True,
                                        inception_layout=args.inception_layout)
    extractors = engine.FeatureExtractors(settings, cache=FeatureCache(root / "mem.sqlite"))
    start = time.perf_counter()
    features = extractors.inception(list_images(root / "m"))
    engine.image_metrics(features, None, ["is"], seed=SEED, n_bootstrap=0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS for {args.n} images ({args.px} px): main {peak_mb:.0f} MB, largest loader worker "
          f"{child_mb:.0f} MB (target < 2048 MB); {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None,
                        help="images per set (default 1000; 10000 with --memory)")
    parser.add_argument("--px", type=int, default=None, help="image size (default 256; 64 with --memory)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--inception-weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--inception-layout", choices=("nchw", "nhwc"), default="nchw",
                        help="our extractor's layout (nhwc: the faster opt-in)")
    parser.add_argument("--stats-dim", type=int, default=2048)
    args = parser.parse_args()
    args.n = args.n or (10_000 if args.memory else 1000)
    args.px = args.px or (64 if args.memory else 256)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        os.environ["TRECS_EVAL_CACHE"] = str(root / "cache")
        weights = args.inception_weights or root / "inception-calibrated.pth"
        if args.inception_weights is None:
            make_calibrated_inception_weights(weights, SEED)
        print(f"# {args.n} images per set, {args.px} px, {args.threads} torch threads, "
              f"batch {args.batch_size}, weights {weights.name}, layout {args.inception_layout}", flush=True)
        if args.memory:
            memory_mode(args, root, weights)
            return
        a, b = root / "a", root / "b"
        write_images(a, args.n, args.px, seed=1)
        write_images(b, args.n, args.px, seed=2)
        import torch_fidelity

        start = time.perf_counter()
        theirs = torch_fidelity.calculate_metrics(
            input1=str(a), input2=str(b), fid=True, kid=True, isc=True, cuda=False, cache=False,
            verbose=False, feature_extractor_weights_path=str(weights), rng_seed=SEED,
            kid_subset_size=min(1000, args.n), batch_size=args.batch_size)
        tf_s = time.perf_counter() - start
        torch.set_num_threads(args.threads)  # in case torch-fidelity changed it
        cold_s, extract_s, ours = ours_metrics(a, b, weights, root / "c", args.batch_size, cold=True,
                                               layout=args.inception_layout)
        line("cold FID+KID+IS", "torch-fidelity", tf_s, "ours cold", cold_s, ">= 1.1x")
        print(f"{'':22s} FID {theirs['frechet_inception_distance']:.6g} vs {ours['fid']:.6g}; "
              f"KID {theirs['kernel_inception_distance_mean']:.6g} vs {ours['kid']:.6g}; "
              f"IS {theirs['inception_score_mean']:.6g} vs {ours['is']:.6g}")
        bare, pool = bare_forward(list_images(a) + list_images(b), weights, args.batch_size)
        ours_rate = 2 * args.n / extract_s
        print(f"{'end-to-end img/s':22s} bare forward {bare:7.2f} img/s | ours cold extraction "
              f"{ours_rate:7.2f} img/s | {100 * ours_rate / bare:5.1f} %  (target >= 90 %)", flush=True)
        from trecs_eval.metrics.fid import features_to_fid

        theirs_forward = features_to_fid(pool[:args.n], pool[args.n:])[0]  # float64 inside
        print(f"{'forward layout':22s} our FID formula on torch-fidelity's NCHW features "
              f"{theirs_forward:.9g} vs on our extraction's {ours['fid']:.9g}: rel diff "
              f"{abs(ours['fid'] - theirs_forward) / theirs_forward:.1e} (default-mode rule <= 1e-6)")
        warm_s, _, _ = ours_metrics(a, b, weights, root / "c", args.batch_size, cold=False,
                                    layout=args.inception_layout)
        line("warm re-run", "torch-fidelity", tf_s, "ours warm", warm_s, ">= 20x")
        fid_from_statistics(args.stats_dim)


if __name__ == "__main__":
    main()

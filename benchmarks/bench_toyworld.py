"""Toyworld writer throughput vs the PNG-only floor, in one run.

    .venv/bin/python benchmarks/bench_toyworld.py [--n 500] [--size 256] [--workers 2]

Prints scenes/s of ``write_toyworld`` with 1 and with ``--workers`` processes, and of a peer
that does only the unavoidable part: encoding and writing the same four PNGs per scene
(image, shifted image, segmentation, instances) from arrays already in memory, with the same
PIL settings, in one process. The ratio says how much scene synthesis (layout, textures,
narrative, traces, gold tags, COCO RLE) costs on top of the I/O. The target is 500
scenes in under 30 s on 2 cores; the projected time for 500 is printed, from wall time and
(for a machine shared with other jobs, where wall time includes waiting) from CPU time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from trecs_eval.data.coco_stuff import write_instance_map, write_label_map
from trecs_eval.data.toyworld import _save_png, generate_scene, render_shifted, write_toyworld

TARGET_SECONDS_FOR_500 = 30.0


def time_toyworld(root: Path, n: int, size: int, workers: int) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds to write n scenes with ``workers`` processes."""
    start, cpu = time.perf_counter(), time.process_time()
    write_toyworld(root / f"w{workers}", n=n, seed=0, image_size=size, progress=False, workers=workers)
    return time.perf_counter() - start, time.process_time() - cpu


def time_png_floor(root: Path, n: int, size: int) -> float:
    """Seconds to encode and write the same four PNGs per scene from in-memory arrays."""
    scenes = [generate_scene(i, 0, size) for i in range(n)]
    shifted = [render_shifted(s) for s in scenes]
    out = root / "floor"
    out.mkdir()
    start = time.perf_counter()
    for scene, moved in zip(scenes, shifted, strict=True):
        item = scene.item_id
        _save_png(scene.image, out / f"{item}.png")
        _save_png(moved, out / f"{item}_shifted.png")
        write_label_map(out / f"{item}_seg.png", scene.labels)
        write_instance_map(out / f"{item}_inst.png", scene.instances)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="scenes per timed run (default 100)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel run (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_toyworld_") as tmp:
        root = Path(tmp)
        one, one_cpu = time_toyworld(root, args.n, args.size, 1)
        many, _ = time_toyworld(root, args.n, args.size, args.workers)
        floor = time_png_floor(root, min(args.n, 50), args.size) * args.n / min(args.n, 50)
    print(f"toyworld n={args.n} size={args.size}")
    print(f"  write_toyworld, 1 process:     {one:7.2f} s  {args.n / one:7.1f} scenes/s")
    print(f"  write_toyworld, {args.workers} processes:   {many:7.2f} s  {args.n / many:7.1f} scenes/s")
    print(f"  peer: PNG encode+write only:   {floor:7.2f} s  {args.n / floor:7.1f} scenes/s  (1 process)")
    print(f"  ratio toyworld(1 proc) / PNG floor: {one / floor:.2f}x")
    print(f"  ratio 1 proc / {args.workers} procs (parallel speed-up): {one / many:.2f}x")
    # On a shared machine wall time includes waiting for the CPU; CPU time does not.
    print(f"  CPU time, 1 process: {1e3 * one_cpu / args.n:.1f} ms/scene -> 500 scenes on {args.workers} "
          f"idle cores: {one_cpu * 500 / args.n / args.workers:.1f} s")
    projected = many * 500 / args.n
    verdict = "meets" if projected < TARGET_SECONDS_FOR_500 else "MISSES"
    print(f"  projected 500 scenes with {args.workers} processes: {projected:.1f} s "
          f"({verdict} the {TARGET_SECONDS_FOR_500:.0f} s target)")


if __name__ == "__main__":
    main()

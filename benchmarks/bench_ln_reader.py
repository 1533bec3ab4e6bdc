"""Time the Localized Narratives reader against bare ``json.loads`` on the same file, in one run.

The peer parses each line and does nothing else, a lower bound for any validating reader; the
ratio says what validation and the typed records cost. The file is synthetic but LN-shaped
(about 40 utterances and 600 trace points per narrative, like LN-COCO). Prints ratios only.

    .venv/bin/python benchmarks/bench_ln_reader.py --n 2000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from trecs_eval.data.localized_narratives import iter_narratives, write_narratives_jsonl
from trecs_eval.data.narratives import Narrative, TimedUtterance, TracePoint


def synthetic(n: int, seed: int) -> list[Narrative]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        utts = tuple(TimedUtterance("in this image we can see", 0.5 * k, 0.5 * k + 0.4) for k in range(40))
        xy = rng.random((600, 2))
        trace = tuple(TracePoint(float(x), float(y), 0.033 * j) for j, (x, y) in enumerate(xy))
        out.append(Narrative("synthetic", str(i), 1, "in this image we can see " * 40, utts, (trace,)))
    return out


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_narratives_jsonl(Path(tmp) / "ln.jsonl", synthetic(args.n, args.seed))
        megabytes = path.stat().st_size / 1e6

        def peer() -> None:
            with open(path, "rb") as handle:
                for line in handle:
                    json.loads(line)

        def ours() -> None:
            for _ in iter_narratives(path):
                pass

        t_peer, t_ours = best_of(args.repeats, peer), best_of(args.repeats, ours)
    print(f"file: {args.n} narratives, {megabytes:.1f} MB")
    print(f"json.loads only : {t_peer:.3f} s  ({megabytes / t_peer:.0f} MB/s)")
    print(f"iter_narratives : {t_ours:.3f} s  ({megabytes / t_ours:.0f} MB/s, "
          f"{args.n / t_ours:.0f} narratives/s)")
    print(f"ratio ours / json.loads: {t_ours / t_peer:.2f}x")


if __name__ == "__main__":
    main()

"""Coverage of every interval and FID_inf's bias, by simulation (the gate's false-alarm rate and
power: ``benchmarks/bench_gate.py``, through the shipped ``reports/compare.py``).

Gaussian "features" with known moments (diagonal covariances: FID and the cubic-kernel KID are
invariant to rotating both sets, so this loses no generality):

    reference ~ N(0, diag(lam)),  generated ~ N(mu_g, diag(g * lam)),  lam_k ∝ k^-1 (Inception-like decay)

* population Fréchet distance in closed form: ``|mu_g|^2 + sum lam (1 + g - 2 sqrt(g))``;
* "FID at n" (what the FID interval covers): the Monte Carlo mean of FID over the replications
  (its own error, sd/sqrt(reps), is printed); the same for KID (unbiased: equal to MMD²) and IS
  (logits = features @ a fixed random matrix, 10 splits);
* per-item metric: scores ``u_image + v_image,system + e_item`` with 2 narratives per image;
  population mean known (0 + shift); the cluster bootstrap's coverage beside the naive one.

    python benchmarks/bench_coverage.py                       # d=64 at n=200,1000; 200 reps
    python benchmarks/bench_coverage.py --d 2048 --n 200 --reps 200
    python benchmarks/bench_coverage.py --quick               # seconds: what the test runs

Coverage target: within [0.92, 0.98] at nominal 0.95 (200 reps: MC sd of a coverage ~0.015).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field

import numpy as np

from trecs_eval.metrics import intervals
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci
from trecs_eval.metrics.fid_inf import features_to_fid_inf
from trecs_eval.metrics.inception_score import logits_to_inception_score

ALPHA = 0.05
N_CLASSES = 20


@dataclass(frozen=True)
class Setting:
    """One simulated world: dimension, sample size, and how far the generator is from the reference."""

    d: int
    n: int
    mean_shift: float = 0.15  # per dimension, generated vs reference
    scale: float = 1.5  # generated variance = scale * reference variance
    narratives_per_image: int = 2
    n_resamples: int = 400


def spectrum(d: int) -> np.ndarray:
    lam = 1.0 / np.arange(1, d + 1)
    return lam * (d / 4.0) / lam.sum()  # total variance d/4 whatever d


def frechet_distance(s: Setting) -> float:
    """Closed form between N(mu_g 1, scale lam) and N(0, lam)."""
    lam = spectrum(s.d)
    return float(s.d * s.mean_shift**2 + np.sum(lam * (1.0 + s.scale - 2.0 * math.sqrt(s.scale))))


@dataclass
class Tally:
    values: dict[str, list[float]] = field(default_factory=dict)
    halves: dict[str, list[float]] = field(default_factory=dict)  # interval half-widths
    hits: dict[str, list[bool]] = field(default_factory=dict)

    def add(self, key: str, value: float, half: float = math.nan) -> None:
        self.values.setdefault(key, []).append(value)
        self.halves.setdefault(key, []).append(half)

    def hit(self, key: str, flag: bool) -> None:
        self.hits.setdefault(key, []).append(bool(flag))

    def coverage_of_mean(self, key: str) -> float:
        """Share of replications whose ``value ± half`` contains the Monte Carlo mean of value."""
        v, half = np.array(self.values[key]), np.array(self.halves[key])
        return float(np.mean(np.abs(v - v.mean()) <= half))

    def rate(self, key: str) -> float:
        return float(np.mean(self.hits[key]))


def _draw(rng: np.random.Generator, s: Setting, n: int, mean: float, scale: float) -> np.ndarray:
    return mean + rng.standard_normal((n, s.d)) * np.sqrt(scale * spectrum(s.d))


def _scores(rng: np.random.Generator, image_effect: np.ndarray, k: int, shift: float) -> np.ndarray:
    system_effect = rng.normal(0.0, 0.5, image_effect.size)  # this system's image-level luck
    return np.repeat(image_effect + system_effect, k) + rng.normal(0.0, 0.5, image_effect.size * k) + shift


def _system(rng: np.random.Generator, s: Setting, gen: np.ndarray, ref: np.ndarray, classes: np.ndarray,
            scores: np.ndarray, seed: int) -> dict:
    return {"fid": intervals.fid_influence(gen, ref), "kid": intervals.kid_influence(gen, ref),
            "is": logits_to_inception_score(gen @ classes, seed=seed).split_scores, "scores": scores,
            "n_resamples": s.n_resamples}


def replicate(s: Setting, rep: int, tally: Tally, with_fid_inf: bool) -> None:
    rng = np.random.default_rng([s.d, s.n, rep])
    classes = np.random.default_rng(7).normal(0.0, 3.0 / math.sqrt(s.d), (s.d, N_CLASSES))
    ref = _draw(rng, s, s.n, 0.0, 1.0)
    gen_a = _draw(rng, s, s.n, s.mean_shift, s.scale)
    k = s.narratives_per_image
    image_effect = rng.normal(0.0, 1.0, s.n // k)
    images = np.repeat(np.arange(s.n // k), k).astype(str)
    a = _system(rng, s, gen_a, ref, classes, _scores(rng, image_effect, k, 0.0), rep)
    for name in ("fid", "kid"):
        found = intervals.delta_interval(a[name], ALPHA)
        tally.add(name, found.value, found.high - found.value)
    split = intervals.split_t_interval(a["is"], ALPHA)
    tally.add("is", split.value, split.high - split.value)  # a t_9 half-width, not z se
    z = intervals.z_quantile(ALPHA)
    for key, clusters in (("per_item (images)", images), ("per_item (naive)", None)):
        _, low, high = bootstrap_mean_ci(a["scores"], s.n_resamples, seed=rep, clusters=clusters)
        tally.hit(key, low <= 0.0 <= high)  # population mean of the scores is 0
    if with_fid_inf:
        inf = features_to_fid_inf(gen_a, ref, seed=rep)
        tally.add("fid_inf", inf.value, inf.high - inf.value)
        tally.hit("fid_inf", abs(inf.value - frechet_distance(s)) <= z * inf.se)


def degenerate_coverage(d: int, n: int, reps: int) -> float:
    """FID interval coverage when generated = reference distribution (FID_inf = 0): the hard case."""
    tally = Tally()
    for rep in range(reps):
        rng = np.random.default_rng([d, n, rep, 99])
        s = Setting(d, n)
        found = intervals.delta_interval(intervals.fid_influence(_draw(rng, s, n, 0.0, 1.0),
                                                                 _draw(rng, s, n, 0.0, 1.0)), ALPHA)
        tally.add("fid", found.value, found.high - found.value)
    return tally.coverage_of_mean("fid")


def simulate(s: Setting, reps: int, with_fid_inf: bool = True) -> dict[str, float]:
    """Every number of one row of the table (module doc)."""
    tally = Tally()
    for rep in range(reps):
        replicate(s, rep, tally, with_fid_inf)
    out = {f"cover {k}": tally.coverage_of_mean(k) for k in ("fid", "kid", "is")}
    out.update({f"cover {k}": tally.rate(k) for k in ("per_item (images)", "per_item (naive)")})
    fd = frechet_distance(s)
    out["FD (closed form)"] = fd
    out["E FID_n (MC)"] = float(np.mean(tally.values["fid"]))
    out["MC sd of E FID_n"] = float(np.std(tally.values["fid"]) / math.sqrt(reps))
    if with_fid_inf:
        out["cover fid_inf"] = tally.rate("fid_inf")
        out["fid_inf bias"] = float(np.mean(tally.values["fid_inf"]) - fd)
        out["fid_inf mean half-width"] = float(np.mean(tally.halves["fid_inf"]))
    return out


def _markdown(rows: list[tuple[Setting, int, dict[str, float], float]]) -> str:
    head = ("| d | n | reps | FD | E FID_n | cover FID | cover KID | cover IS "
            "| cover per-item (images / naive) | cover FID_inf | FID_inf bias | s |")
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for s, reps, r, seconds in rows:
        inf = (f"{r['cover fid_inf']:.3f} | {r['fid_inf bias']:+.3g}" if "cover fid_inf" in r
               else "n/a | n/a")
        lines.append(
            f"| {s.d} | {s.n} | {reps} | {r['FD (closed form)']:.3g} | {r['E FID_n (MC)']:.4g} "
            f"| {r['cover fid']:.3f} | {r['cover kid']:.3f} | {r['cover is']:.3f} "
            f"| {r['cover per_item (images)']:.3f} / {r['cover per_item (naive)']:.3f} | {inf} "
            f"| {seconds:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", type=int, nargs="+", default=[64])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--no-fid-inf", action="store_true", help="skip FID_inf (15 FIDs per replication)")
    parser.add_argument("--degenerate", action="store_true", help="also FID coverage when gen = ref")
    parser.add_argument("--quick", action="store_true", help="d=8, n=120, 60 reps (seconds)")
    args = parser.parse_args()
    grid = [(8, 120)] if args.quick else [(d, n) for d in args.d for n in args.n]
    reps = 60 if args.quick else args.reps
    rows = []
    for d, n in grid:
        start = time.perf_counter()
        setting = Setting(d, n)
        found = simulate(setting, reps, with_fid_inf=not args.no_fid_inf)
        rows.append((setting, reps, found, time.perf_counter() - start))
        print(_markdown(rows[-1:]).splitlines()[-1], flush=True)
        if args.degenerate:
            print(f"  degenerate (gen = ref) FID coverage d={d} n={n}: {degenerate_coverage(d, n, reps):.3f}")
    print()
    print(_markdown(rows))


if __name__ == "__main__":
    main()

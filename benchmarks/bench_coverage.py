"""Coverage of every interval and FID_inf's bias, by simulation (the gate's false-alarm rate and
power: ``benchmarks/bench_gate.py``, through the shipped ``reports/compare.py``).

Gaussian "features" with known moments (diagonal covariances: FID and the cubic-kernel KID are
invariant to rotating both sets, so this loses no generality):

    reference ~ N(0, diag(lam)),  generated ~ N(mu_g, diag(g * lam)),  lam_k ∝ k^-1 (Inception-like decay)

**Images are the sampling unit**, as in LN-COCO: ``n`` narratives describe about ``n / 1.7`` images
(70 % of the images have 2 narratives, 30 % one: 1.7 per image). A generated item is drawn from its
narrative, which shares its image: ``z = sqrt(rho) a_image + sqrt(1 - rho) e_item`` (``rho =
image_share``, 0.5), ``generated = mu_g + sqrt(g lam) z``, so the marginal law is unchanged. The
reference set holds each image once (as the run's ``reference.kind = "eval"`` does), drawn
independently of the generated items (``--cross`` correlates an image's reference features with
its narratives' generated ones instead).

Every interval is the run's own code path: ``engine.image_metrics`` (FID, KID, IS, FID_inf, with
``ImageClusters``), ``cmmd.cmmd_result`` (CMMD), ``bootstrap_mean_ci`` with image clusters (the
per-item means: CLIPScore, R-precision, trace-canvas accuracy) and ``label_canvas.counts_per_image``
+ ``bootstrap_statistic_ci`` (pooled pixel accuracy); the "naive" columns run the same code with
every narrative its own cluster (what the run did before).

* population Fréchet distance in closed form: ``|mu_g|^2 + sum lam (1 + g - 2 sqrt(g))``;
* "FID at n" (what the FID interval covers): the Monte Carlo mean of FID over the replications
  (its own error, sd/sqrt(reps), is printed); the same for KID (unbiased: equal to MMD²), IS
  (logits = features @ a fixed random matrix, 10 splits) and CMMD (unit-normalized features);
* per-item metric: scores ``u_image + v_image,system + e_item``; population mean known (0 + shift);
* pooled ratio: per narrative ``TP ~ Bin(G_image, expit(b_image + e_item))`` pixels of ``G_image``
  (image sizes vary); population ratio ``E[G p] / E[G]`` by a 10^6-draw Monte Carlo;

    python benchmarks/bench_coverage.py                       # d=64 at n=200,1000; 200 reps
    python benchmarks/bench_coverage.py --d 16 --n 300 --reps 200   # minutes: the docs' small row
    python benchmarks/bench_coverage.py --d 2048 --n 200 --reps 200
    python benchmarks/bench_coverage.py --quick               # seconds: what the test runs

Coverage target: within [0.92, 0.98] at nominal 0.95 (200 reps: MC sd of a coverage ~0.015).
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from scipy.special import expit

from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.features.inception import InceptionFeatures
from trecs_eval.metrics import cmmd, engine, intervals, label_canvas
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci, bootstrap_statistic_ci

ALPHA = 0.05
N_CLASSES = 20
IDENTITY = ExtractorIdentity(name="simulated", weights_sha256="0" * 64, layers=("pool", "logits"),
                             preprocessing="none")
POOLED_MEAN, POOLED_SD, ITEM_SD = 0.4, 1.0, 0.5  # logit of an image's accuracy; a narrative's deviation


@dataclass(frozen=True)
class Setting:
    """One simulated world: dimension, sample size, and how far the generator is from the reference."""

    d: int
    n: int
    mean_shift: float = 0.15  # per dimension, generated vs reference
    scale: float = 1.5  # generated variance = scale * reference variance
    narratives_per_image: float = 1.7  # LN-COCO's; an image has 2 narratives or 1 (module doc)
    image_share: float = 0.5  # share of a generated item's variance its image explains
    cross: float = 0.0  # correlation of an image's reference latent with its narratives' generated ones
    n_resamples: int = 400

    def image_sizes(self) -> np.ndarray:
        """Narratives per image: 2 for a fraction ``npi - 1`` of the images, else 1 (mean ``npi``)."""
        n_images = round(self.n / self.narratives_per_image)
        twos = round((self.narratives_per_image - 1.0) * n_images)
        return np.where(np.arange(n_images) * twos % n_images < twos, 2, 1)


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


def _draw_clustered(rng: np.random.Generator, s: Setting, sizes: np.ndarray, mean: float, scale: float,
                    reference_latent: np.ndarray | None = None) -> np.ndarray:
    """One row per narrative; narratives of an image share ``image_share`` of their variance."""
    latent = rng.standard_normal((sizes.size, s.d))
    if reference_latent is not None and s.cross > 0.0:
        latent = math.sqrt(s.cross) * reference_latent + math.sqrt(1.0 - s.cross) * latent
    z = (math.sqrt(s.image_share) * np.repeat(latent, sizes, axis=0)
         + math.sqrt(1.0 - s.image_share) * rng.standard_normal((int(sizes.sum()), s.d)))
    return mean + z * np.sqrt(scale * spectrum(s.d))


def _scores(rng: np.random.Generator, image_effect: np.ndarray, sizes: np.ndarray, shift: float
            ) -> np.ndarray:
    system_effect = rng.normal(0.0, 0.5, image_effect.size)  # this system's image-level luck
    return (np.repeat(image_effect + system_effect, sizes) + rng.normal(0.0, 0.5, int(sizes.sum()))
            + shift)


@functools.cache
def pooled_truth() -> float:
    """``E[G p] / E[G]`` = ``E[p]`` (sizes independent of accuracy), by Monte Carlo (10^6 draws)."""
    rng = np.random.default_rng(12345)
    b = rng.normal(POOLED_MEAN, POOLED_SD, 1_000_000)
    return float(np.mean(expit(b + rng.normal(0.0, ITEM_SD, b.size))))


def _pooled_counts(rng: np.random.Generator, sizes: np.ndarray) -> np.ndarray:
    """(n, 3, 2) label-count rows as ``label_canvas.class_counts`` gives them (TP, gold, predicted)."""
    gold = np.repeat(rng.integers(500, 1500, sizes.size), sizes)
    p = expit(np.repeat(rng.normal(POOLED_MEAN, POOLED_SD, sizes.size), sizes)
              + rng.normal(0.0, ITEM_SD, gold.size))
    counts = np.zeros((gold.size, 3, 2))
    counts[:, 0, 1], counts[:, 1, 1], counts[:, 2, 1] = rng.binomial(gold, p), gold, gold
    return counts


def _inception(features: np.ndarray, classes: np.ndarray | None) -> InceptionFeatures:
    logits = features @ classes if classes is not None else np.zeros((len(features), 0))
    return InceptionFeatures(features.astype(np.float32), logits.astype(np.float32),
                             tuple(map(str, range(len(features)))), IDENTITY)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run_intervals(tally: Tally, s: Setting, rep: int, gen: np.ndarray, ref: np.ndarray, classes: np.ndarray,
                  images: np.ndarray, with_fid_inf: bool) -> None:
    """The run's intervals of one replication (the shipped code paths of the module doc)."""
    clusters = intervals.ImageClusters.of(images)
    names = ["fid", "kid", "is"] + (["fid_inf"] if with_fid_inf else [])
    found = {r.name: r for r in engine.image_metrics(_inception(gen, classes), _inception(ref, None), names,
                                                     seed=rep, alpha=ALPHA, images=clusters)}
    naive = {r.name: r for r in engine.image_metrics(_inception(gen, None), _inception(ref, None),
                                                     ["fid", "kid"], seed=rep, alpha=ALPHA)}
    for name in ("fid", "kid", "is"):
        tally.add(name, found[name].value, found[name].ci_high - found[name].value)
    for name in ("fid", "kid"):
        tally.add(f"{name} (naive)", naive[name].value, naive[name].ci_high - naive[name].value)
    for key, labels in (("cmmd", images), ("cmmd (naive)", None)):
        result = cmmd.cmmd_result(_unit(gen), _unit(ref), alpha=ALPHA, clusters=labels)
        tally.add(key, result.value, result.ci_high - result.value)
    if with_fid_inf:
        inf = found["fid_inf"]
        tally.add("fid_inf", inf.value, inf.ci_high - inf.value)
        tally.hit("fid_inf", inf.ci_low <= frechet_distance(s) <= inf.ci_high)
    rng = np.random.default_rng([s.d, s.n, rep, 5])
    counts = _pooled_counts(rng, s.image_sizes())
    owners = [SimpleNamespace(narrative=SimpleNamespace(image_id=str(i))) for i in images]
    truth = pooled_truth()
    pooled = label_canvas.pixel_accuracy_from_counts
    for key, rows in (("pooled (images)", label_canvas.counts_per_image(owners, counts)),
                      ("pooled (naive)", counts)):
        low, high = bootstrap_statistic_ci(len(rows), lambda idx, rows=rows: pooled(rows[idx].sum(axis=0)),
                                           n_resamples=s.n_resamples, seed=rep, alpha=ALPHA)
        tally.hit(key, low <= truth <= high)


def replicate(s: Setting, rep: int, tally: Tally, with_fid_inf: bool) -> None:
    rng = np.random.default_rng([s.d, s.n, rep])
    classes = np.random.default_rng(7).normal(0.0, 3.0 / math.sqrt(s.d), (s.d, N_CLASSES))
    sizes = s.image_sizes()
    ref_latent = rng.standard_normal((sizes.size, s.d))
    ref = ref_latent * np.sqrt(spectrum(s.d))  # each image once
    gen_a = _draw_clustered(rng, s, sizes, s.mean_shift, s.scale, ref_latent)
    image_effect = rng.normal(0.0, 1.0, sizes.size)
    images = np.repeat(np.arange(sizes.size), sizes).astype(str)
    scores = _scores(rng, image_effect, sizes, 0.0)
    run_intervals(tally, s, rep, gen_a, ref, classes, images, with_fid_inf)
    for key, clusters in (("per_item (images)", images), ("per_item (naive)", None)):
        _, low, high = bootstrap_mean_ci(scores, s.n_resamples, seed=rep, clusters=clusters)
        tally.hit(key, low <= 0.0 <= high)  # population mean of the scores is 0


def degenerate_coverage(d: int, n: int, reps: int) -> dict[str, float]:
    """When generated = reference distribution (population FD = 0), the hard case: coverage of the
    run's FID interval (of FID at n) and of its FID_inf interval (of 0), and FID_inf's mean."""
    tally = Tally()
    for rep in range(reps):
        rng = np.random.default_rng([d, n, rep, 99])
        s = Setting(d, n, mean_shift=0.0, scale=1.0)
        gen, ref = _draw(rng, s, n, 0.0, 1.0), _draw(rng, s, n, 0.0, 1.0)
        found = {r.name: r for r in engine.image_metrics(_inception(gen, None), _inception(ref, None),
                                                         ["fid", "fid_inf"], seed=rep, alpha=ALPHA)}
        tally.add("fid", found["fid"].value, found["fid"].ci_high - found["fid"].value)
        tally.add("fid_inf", found["fid_inf"].value)
        tally.hit("fid_inf", found["fid_inf"].ci_low <= 0.0 <= found["fid_inf"].ci_high)
    return {"cover fid": tally.coverage_of_mean("fid"), "cover fid_inf": tally.rate("fid_inf"),
            "mean fid_inf": float(np.mean(tally.values["fid_inf"]))}


def simulate(s: Setting, reps: int, with_fid_inf: bool = True) -> dict[str, float]:
    """Every number of one row of the table (module doc)."""
    tally = Tally()
    for rep in range(reps):
        replicate(s, rep, tally, with_fid_inf)
    out = {f"cover {k}": tally.coverage_of_mean(k)
           for k in ("fid", "kid", "is", "cmmd", "fid (naive)", "kid (naive)", "cmmd (naive)")}
    out.update({f"cover {k}": tally.rate(k) for k in ("per_item (images)", "per_item (naive)",
                                                       "pooled (images)", "pooled (naive)")})
    halves = tally.halves
    out["se ratio fid (images / naive)"] = float(np.mean(halves["fid"]) / np.mean(halves["fid (naive)"]))
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
    head = ("| d | n (images) | reps | FD | E FID_n | cover FID (naive) | se ratio | cover KID (naive) "
            "| cover CMMD (naive) | cover IS | cover per-item (naive) | cover pooled (naive) "
            "| cover FID_inf | FID_inf bias | s |")
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for s, reps, r, seconds in rows:
        inf = (f"{r['cover fid_inf']:.3f} | {r['fid_inf bias']:+.3g}" if "cover fid_inf" in r
               else "n/a | n/a")
        lines.append(
            f"| {s.d} | {int(s.image_sizes().sum())} ({s.image_sizes().size}) | {reps} "
            f"| {r['FD (closed form)']:.3g} | {r['E FID_n (MC)']:.4g} "
            f"| {r['cover fid']:.3f} ({r['cover fid (naive)']:.3f}) "
            f"| {r['se ratio fid (images / naive)']:.2f} "
            f"| {r['cover kid']:.3f} ({r['cover kid (naive)']:.3f}) "
            f"| {r['cover cmmd']:.3f} ({r['cover cmmd (naive)']:.3f}) | {r['cover is']:.3f} "
            f"| {r['cover per_item (images)']:.3f} ({r['cover per_item (naive)']:.3f}) "
            f"| {r['cover pooled (images)']:.3f} ({r['cover pooled (naive)']:.3f}) | {inf} "
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
    parser.add_argument("--cross", type=float, default=0.0,
                        help="correlation of an image's reference and generated latents (module doc)")
    args = parser.parse_args()
    grid = [(8, 120)] if args.quick else [(d, n) for d in args.d for n in args.n]
    reps = 60 if args.quick else args.reps
    rows = []
    for d, n in grid:
        start = time.perf_counter()
        setting = Setting(d, n, cross=args.cross)
        found = simulate(setting, reps, with_fid_inf=not args.no_fid_inf)
        rows.append((setting, reps, found, time.perf_counter() - start))
        print(_markdown(rows[-1:]).splitlines()[-1], flush=True)
        if args.degenerate:
            found = degenerate_coverage(d, n, reps)
            print(f"  degenerate (gen = ref, FD = 0) d={d} n={n}: cover FID (of FID at n) "
                  f"{found['cover fid']:.3f}, cover FID_inf (of 0) {found['cover fid_inf']:.3f}, "
                  f"mean FID_inf {found['mean fid_inf']:+.3g}")
    print()
    print(_markdown(rows))


if __name__ == "__main__":
    main()

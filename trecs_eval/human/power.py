"""``human power``: power of a pair's win-rate test by simulation under the study's own design.

One system pair, ``items × judgments_per_pair`` judgments, each item's judgments by distinct raters
(loads balanced, as the plan assigns them). A judgment of item ``i`` by rater ``r`` is a win
with probability ``(1 - tie_rate)(0.5 + effect/(1 - tie_rate) + u_i + v_r)`` (clipped to
[0.01, 0.99]), a tie with ``tie_rate``, so the true win rate with ties split is ``0.5 + effect``;
``u_i ~ N(0, item_sd)`` and ``v_r ~ N(0, rater_sd)`` make judgments of one item, and of one
rater, correlated. Each simulated study is tested as the analysis does (two-way clustered 95 %
interval, :func:`trecs_eval.human.stats.two_way_mean`): *power* is the share of simulations whose
interval excludes 0.5; *size* the same with ``effect = 0`` (should be near 0.05).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trecs_eval.errors import ConfigError
from trecs_eval.human.stats import two_way_mean
from trecs_eval.human.study import Study

SCALES = (0.5, 1.0, 2.0, 4.0)  # × the planned items and raters; doubled further until powered
MAX_SCALE = 64.0
TARGET_POWER = 0.8


@dataclass(frozen=True)
class PowerRow:
    items: int
    raters: int
    judgments_per_pair: int
    power: float
    size: float


def simulate_pair(n_items: int, n_raters: int, per_item: int, effect: float, tie_rate: float,
                  item_sd: float, rater_sd: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, items, raters) of one simulated pair under the module's model (see the docstring)."""
    order = rng.permutation(n_raters)
    raters = order[(np.arange(n_items)[:, None] * per_item + np.arange(per_item)[None, :]) % n_raters].ravel()
    items = np.repeat(np.arange(n_items), per_item)
    u, v = rng.normal(0, item_sd, n_items), rng.normal(0, rater_sd, n_raters)
    p = np.clip(0.5 + effect / (1 - tie_rate) + u[items] + v[raters], 0.01, 0.99)
    tie = rng.random(len(items)) < tie_rate
    return np.where(tie, 0.5, (rng.random(len(items)) < p).astype(float)), items, raters


def _rejects(n_items: int, n_raters: int, per_item: int, effect: float, tie_rate: float, item_sd: float,
             rater_sd: float, rng: np.random.Generator) -> bool:
    est = two_way_mean(*simulate_pair(n_items, n_raters, per_item, effect, tie_rate, item_sd, rater_sd, rng))
    return not (est.low <= 0.5 <= est.high)


def power_table(study: Study, effect: float, *, tie_rate: float = 0.1, item_sd: float = 0.1,
                rater_sd: float = 0.05, n_sims: int = 200, seed: int = 0,
                scales: tuple[float, ...] = SCALES) -> list[PowerRow]:
    """Power and size at ``scales`` × the study's items and raters (judgments per pair fixed)."""
    if not 0 < effect < 0.5 or not 0 <= tie_rate < 1 or n_sims < 1:
        raise ConfigError("--effect must lie in (0, 0.5), --tie-rate in [0, 1), --sims >= 1")
    per_item = int(study.data["judgments_per_pair"])
    rng = np.random.default_rng(seed)
    rows: list[PowerRow] = []
    scale_list = list(scales)
    while scale_list:
        scale = scale_list.pop(0)
        n_items = max(2, round(len(study.items) * scale))
        n_raters = max(per_item, round(len(study.raters) * scale))
        hits = [[_rejects(n_items, n_raters, per_item, e, tie_rate, item_sd, rater_sd, rng)
                 for _ in range(n_sims)] for e in (effect, 0.0)]
        rows.append(PowerRow(n_items, n_raters, n_items * per_item, float(np.mean(hits[0])),
                             float(np.mean(hits[1]))))
        if not scale_list and rows[-1].power < TARGET_POWER and scale * 2 <= MAX_SCALE:
            scale_list.append(scale * 2)
    return rows


def render_power(rows: list[PowerRow], effect: float, n_pairs: int) -> str:
    lines = [f"power to detect a win rate of {0.5 + effect:.3f} vs 0.5 (alpha 0.05, two-way clustered), "
             f"per system pair ({n_pairs} pair(s) in the study)",
             "| items | raters | judgments per pair | power | size (effect 0) |",
             "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.items} | {r.raters} | {r.judgments_per_pair} | {r.power:.2f} | {r.size:.2f} |"
              for r in rows]
    enough = next((r for r in rows if r.power >= TARGET_POWER), None)
    lines.append(f"smallest design with power >= {TARGET_POWER:.0%}: " + (
        f"{enough.items} items, {enough.raters} raters" if enough else "none of these; plan more items"))
    return "\n".join(lines) + "\n"


def pairs_in(study: Study) -> int:
    return math.comb(len(study.systems), 2) if len(study.systems) >= 2 else 0

"""``human analyze``: attention-check exclusion, win rates, Bradley–Terry–Davidson, agreement.

Rules, stated once (docs/human-studies.md repeats them):

* **Exclusion.** A rater's attention-check answers (every question of every gold-pair page) pass
  when they pick the gold system; a tie fails. A rater whose pass share is below the study's
  ``attention.min_pass`` is excluded from every statistic; raters without an answered check are
  kept and counted as unchecked.
* **Win rate.** Per question and system pair, over regular pages only (attention checks and
  repeats excluded): a win counts 1, a tie 1/2 (ties split), a loss 0; 95 % interval two-way
  cluster-robust by item and rater (:func:`trecs_eval.human.stats.two_way_mean`), cut to [0, 1].
* **Ranking.** For three or more systems, Bradley–Terry with Davidson's ties per question;
  intervals from a two-way (pigeonhole) bootstrap: items and raters resampled independently,
  each judgment weighted by the product of its item's and rater's counts.
* **Agreement.** Krippendorff's α (nominal: winner system or tie) per question over regular pages;
  intra-rater consistency on repeats (same winner, Wilson interval); metric–human agreement per
  automatic metric with per-item values: the share of non-tied human judgments whose winner the
  metric also prefers (a metric tie counts 1/2), two-way clustered interval.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from trecs_eval.human.stats import Estimate, fit_davidson, krippendorff_alpha_nominal, two_way_mean, wilson
from trecs_eval.human.store import judgments_frame
from trecs_eval.human.study import Study

DEFAULT_BOOTSTRAP = 200


def _est(e: Estimate) -> dict[str, Any]:
    # Every statistic here is a share: a t-interval reaching past 0 or 1 is cut there.
    return {"value": e.value, "low": max(e.low, 0.0), "high": min(e.high, 1.0), "n": e.n,
            "n_items": e.n_items, "n_raters": e.n_raters}


def attention(study: Study, frame: pd.DataFrame) -> tuple[dict[str, Any], set[str]]:
    gold, rule = study.attention.get("gold_system"), float(study.attention["min_pass"])
    checks = frame[frame["kind"] == "attention"]
    passed = (checks["winner"] == gold).groupby(checks["rater"]).agg(["mean", "size"])
    excluded = set(passed.index[passed["mean"] < rule])
    raters = set(frame["rater"])
    summary = {"rule": f"exclude a rater whose share of passed attention-check answers is below {rule:g} "
                       f"(pass = the gold system '{gold}' chosen; a tie fails)",
               "raters": len(raters), "checked": len(passed), "unchecked": len(raters - set(passed.index)),
               "excluded": len(excluded), "excluded_raters": sorted(excluded),
               "answers": len(checks), "passed_answers": int((checks["winner"] == gold).sum())}
    return summary, excluded


def _score(winner: pd.Series, a: str) -> np.ndarray:
    return np.where(winner.isna(), 0.5, (winner == a).astype(float))


def win_rates(study: Study, regular: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for question in study.question_ids:
        q = regular[regular["question"] == question]
        for a, b in itertools.combinations(study.systems, 2):
            sub = q[((q["left"] == a) & (q["right"] == b)) | ((q["left"] == b) & (q["right"] == a))]
            est = two_way_mean(_score(sub["winner"], a), sub["item"], sub["rater"])
            rows.append({"question": question, "system": a, "opponent": b, **_est(est),
                         "wins": int((sub["winner"] == a).sum()), "ties": int(sub["winner"].isna().sum()),
                         "losses": int((sub["winner"] == b).sum())})
    return rows


def system_win_rates(study: Study, regular: pd.DataFrame) -> list[dict[str, Any]]:
    """Each system's win rate (ties split) against all the others pooled, per question."""
    rows = []
    for question in study.question_ids:
        q = regular[regular["question"] == question]
        for s in study.systems:
            sub = q[(q["left"] == s) | (q["right"] == s)]
            est = two_way_mean(_score(sub["winner"], s), sub["item"], sub["rater"])
            rows.append({"question": question, "system": s, **_est(est)})
    return rows


def _pairs(study: Study, q: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {s: k for k, s in enumerate(study.systems)}
    i, j = q["left"].map(index).to_numpy(), q["right"].map(index).to_numpy()
    return i, j, np.where(q["winner"].isna(), 0.5, (q["winner"] == q["left"]).astype(float))


def bradley_terry(study: Study, regular: pd.DataFrame, n_boot: int, seed: int) -> list[dict[str, Any]]:
    if len(study.systems) < 3:
        return []
    rng = np.random.default_rng(seed)
    rows = []
    for question in study.question_ids:
        q = regular[regular["question"] == question]
        if q.empty:
            continue
        i, j, y = _pairs(study, q)
        fit = fit_davidson(len(study.systems), i, j, y)
        item_codes, items = pd.factorize(q["item"])
        rater_codes, raters = pd.factorize(q["rater"])
        draws = []
        for _ in range(n_boot):
            wi = rng.multinomial(len(items), np.full(len(items), 1 / len(items)))
            wr = rng.multinomial(len(raters), np.full(len(raters), 1 / len(raters)))
            weights = wi[item_codes] * wr[rater_codes]
            draws.append(fit_davidson(len(study.systems), i, j, y, weights, start=fit).theta)
        draws_a = np.array(draws).reshape(n_boot, len(study.systems))
        ranks = (-draws_a).argsort(axis=1).argsort(axis=1) + 1
        order = (-fit.theta).argsort().argsort() + 1
        for k, s in enumerate(study.systems):
            low, high = (np.percentile(draws_a[:, k], [2.5, 97.5]) if n_boot else (math.nan, math.nan))
            rows.append({"question": question, "system": s, "theta": float(fit.theta[k]),
                         "low": float(low), "high": float(high), "rank": int(order[k]),
                         "rank_low": int(ranks[:, k].min()) if n_boot else None,
                         "rank_high": int(ranks[:, k].max()) if n_boot else None,
                         "tie_nu": math.exp(fit.log_nu)})
    return rows


def agreement(study: Study, regular: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for question in study.question_ids:
        q = regular[regular["question"] == question]
        units = q["item"] + "\t" + q[["left", "right"]].apply(lambda r: "|".join(sorted(r)), axis=1) \
            if not q.empty else pd.Series([], dtype=object)
        values = q["winner"].fillna("\x00tie")
        alpha = krippendorff_alpha_nominal(list(units), list(values)) if not q.empty else math.nan
        rows.append({"question": question, "alpha": alpha, "n": len(q),
                     "units": int(units.nunique()) if not q.empty else 0})
    return rows


def consistency(study: Study, kept: pd.DataFrame) -> list[dict[str, Any]]:
    repeats = kept[kept["kind"] == "repeat"]
    if repeats.empty:
        return [{"question": q, "value": math.nan, "low": math.nan, "high": math.nan, "n": 0}
                for q in study.question_ids]
    merged = repeats.merge(kept[kept["kind"] == "regular"], left_on=["repeat_of", "question", "rater"],
                           right_on=["task", "question", "rater"], suffixes=("", "_first"))
    rows = []
    for question in study.question_ids:
        m = merged[merged["question"] == question]
        same = int((m["winner"].fillna("\x00tie") == m["winner_first"].fillna("\x00tie")).sum())
        low, high = wilson(same, len(m))
        rows.append({"question": question, "value": same / len(m) if len(m) else math.nan, "low": low,
                     "high": high, "n": len(m)})
    return rows


def metric_agreement(study: Study, regular: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    decided = regular[regular["winner"].notna()]
    for metric, spec in sorted(study.data.get("item_metrics", {}).items()):
        values, sign = spec["values"], 1.0 if spec["higher_is_better"] else -1.0
        va = np.array([values.get(f"{i}\t{s}", math.nan) for i, s in zip(decided["item"], decided["winner"],
                                                                      strict=True)])
        loser = np.where(decided["winner"] == decided["left"], decided["right"], decided["left"])
        vb = np.array([values.get(f"{i}\t{s}", math.nan)
                       for i, s in zip(decided["item"], loser, strict=True)])
        ok = np.isfinite(va) & np.isfinite(vb)
        agree = np.where(va == vb, 0.5, (sign * (va - vb) > 0).astype(float))
        for question in study.question_ids:
            mask = ok & (decided["question"] == question).to_numpy()
            sub = decided[mask]
            est = two_way_mean(agree[mask], sub["item"], sub["rater"])
            rows.append({"metric": metric, "question": question, **_est(est)})
    return rows


def analyze(study: Study, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    frame = judgments_frame(study)
    summary, excluded = attention(study, frame)
    kept = frame[~frame["rater"].isin(excluded)]
    regular = kept[kept["kind"] == "regular"]
    return {"study_hash": study.digest, "judgments": len(frame), "attention": summary,
            "ties": "split: a tie counts 1/2 to each side",
            "interval": "95 %, two-way cluster-robust by item and rater (Cameron-Gelbach-Miller), "
                        "t(min G - 1)",
            "win_rates": win_rates(study, regular), "system_win_rates": system_win_rates(study, regular),
            "bradley_terry": bradley_terry(study, regular, n_boot, seed),
            "krippendorff_alpha": agreement(study, regular), "consistency": consistency(study, kept),
            "metric_agreement": metric_agreement(study, regular), "bootstrap": n_boot, "seed": seed}

"""Simulated raters with known preferences: the ground truth the analysis must recover.

Each system ``s`` has a true log-strength ``θ_s`` (Bradley–Terry) and each (item, system) an
effect ``δ_is ~ N(0, item_sd)``, so judgments of one item are correlated (item clustering);
each rater a bias ``b_r ~ N(0, rater_sd)`` towards the left image (rater clustering). A careful
rater answers with Davidson's probabilities for ``d = θ_L + δ_iL - θ_R - δ_iR + b_r``: left
``e^{d/2}/D``, right ``e^{-d/2}/D``, tie ``ν/D``, ``D = e^{d/2} + e^{-d/2} + ν``. A careless
rater clicks left or right at random. The broken attention-check system has ``θ = -∞``; a gold
system outside ``theta`` is 5 above the strongest.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection, Mapping

import numpy as np

from trecs_eval.human.store import Answer
from trecs_eval.human.study import Study


def _effect(seed: int, item: str, system: str, sd: float) -> float:
    rng = np.random.default_rng([seed, zlib.crc32(item.encode()), zlib.crc32(system.encode())])
    return float(rng.normal(0.0, sd)) if sd > 0 else 0.0


def simulate_answers(study: Study, theta: Mapping[str, float], *, nu: float = 0.3, item_sd: float = 0.0,
                     rater_sd: float = 0.0, careless_share: float = 0.0, seed: int = 0,
                     raters: list[str] | None = None,
                     careless: Collection[str] | None = None) -> list[Answer]:
    """One answer per question of every task of ``raters`` (default: all), as ``source='simulated'``;
    the ``careless`` raters (default: a random ``careless_share`` of them) click at random."""
    rng = np.random.default_rng(seed)
    chosen = raters if raters is not None else study.raters
    if careless is None:
        careless = set(rng.choice(chosen, size=round(careless_share * len(chosen)), replace=False).tolist())
    bias = {r: float(rng.normal(0.0, rater_sd)) if rater_sd > 0 else 0.0 for r in chosen}
    broken = study.attention.get("broken_system")
    strength = {s: (-math.inf if s == broken else max(theta.values()) + 5.0) for s in study.data["items"]
                [study.tasks[0].item]["images"]} if study.tasks else {}
    strength.update(theta)
    answers = []
    for task in study.tasks:
        if task.rater not in bias:
            continue
        for question in study.question_ids:
            if task.rater in careless:
                choice = "left" if rng.random() < 0.5 else "right"
            else:
                d = (strength[task.left] + _effect(seed, task.item, task.left, item_sd)
                     - strength[task.right] - _effect(seed, task.item, task.right, item_sd)
                     + bias[task.rater])
                choice = _davidson_choice(d, nu, rng)
            seconds = float(rng.uniform(2, 9))
            answers.append(Answer(task.task, question, choice, task.rater, "simulated", seconds))
    return answers


def _davidson_choice(d: float, nu: float, rng: np.random.Generator) -> str:
    if math.isnan(d):
        return "tie"
    if math.isinf(d):
        return "left" if d > 0 else "right"
    left, right = math.exp(d / 2), math.exp(-d / 2)
    u = rng.random() * (left + right + nu)
    return "left" if u < left else ("right" if u < left + right else "tie")

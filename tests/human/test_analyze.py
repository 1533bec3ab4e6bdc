"""The analysis on simulated studies with a known truth, and its statistics recomputed by hand."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import krippendorff
import numpy as np
import pytest

from tests.human.conftest import SMALL_SPEC
from trecs_eval.human.analyze import analyze, metric_agreement
from trecs_eval.human.plan import plan_study
from trecs_eval.human.simulate import simulate_answers
from trecs_eval.human.store import judgments_frame, open_store, record

ALPHA_ABS_TOL = 1e-10
THETA = {"trecs": 1.2, "sd": 0.0, "gligen": -1.2}


def _store(study, answers):
    db = open_store(study)
    record(db, answers)
    db.close()


@pytest.fixture
def big_study(human_run, tmp_path):
    spec = replace(SMALL_SPEC, n_items=12, judgments_per_pair=6, tasks_per_rater=18, attention_rate=0.15,
                   repeat_rate=0.2)
    return plan_study(human_run, tmp_path / "big", spec)


def test_simulated_raters_recover_ranking_and_careless_raters_are_excluded(big_study):
    careless = set(big_study.raters[:3])
    _store(big_study, simulate_answers(big_study, THETA, nu=0.3, item_sd=0.3, rater_sd=0.3, seed=5,
                                       careless=careless))
    result = analyze(big_study, n_boot=50, seed=0)
    att = result["attention"]
    assert set(att["excluded_raters"]) <= careless and len(att["excluded_raters"]) >= 2
    assert att["excluded"] == len(att["excluded_raters"]) and att["raters"] == len(big_study.raters)
    for question in big_study.question_ids:
        bt = {r["system"]: r for r in result["bradley_terry"] if r["question"] == question}
        assert [bt[s]["rank"] for s in ("trecs", "sd", "gligen")] == [1, 2, 3]
        assert bt["trecs"]["low"] > bt["gligen"]["high"]
        pair = next(r for r in result["win_rates"] if r["question"] == question
                    and (r["system"], r["opponent"]) == ("trecs", "gligen"))
        assert pair["low"] > 0.5


def test_exclusion_rule_and_split_ties_by_hand(small_study):
    answers = simulate_answers(small_study, THETA, nu=1.0, seed=6)
    bad = small_study.raters[0]
    gold = small_study.attention["gold_system"]
    tasks = small_study.task_map()
    answers = [replace(a, choice=("right" if tasks[a.task].left == gold else "left"))
               if a.rater == bad and tasks[a.task].kind == "attention" else a for a in answers]
    _store(small_study, answers)
    result = analyze(small_study, n_boot=0)
    assert result["attention"]["excluded_raters"] == [bad]
    for row in result["win_rates"]:
        score = []
        for a in answers:
            t = tasks[a.task]
            if a.rater == bad or t.kind != "regular" or a.question != row["question"]:
                continue
            if {t.left, t.right} != {row["system"], row["opponent"]}:
                continue
            won = {"left": t.left, "right": t.right}.get(a.choice)
            score.append(0.5 if won is None else float(won == row["system"]))
        assert row["value"] == pytest.approx(np.mean(score))
        assert row["n"] == len(score) and row["wins"] + row["ties"] + row["losses"] == len(score)


def test_alpha_matches_krippendorff_on_the_study(small_study):
    answers = simulate_answers(small_study, THETA, nu=0.5, item_sd=0.5, seed=7)
    _store(small_study, answers)
    result = analyze(small_study, n_boot=0)
    tasks = small_study.task_map()
    for question in small_study.question_ids:
        rows = [(a, tasks[a.task]) for a in answers
                if a.question == question and tasks[a.task].kind == "regular"]
        units = sorted({(t.item, tuple(sorted((t.left, t.right)))) for _, t in rows})
        coders = sorted({a.rater for a, _ in rows})
        codes = {s: k for k, s in enumerate(small_study.systems)}
        data = np.full((len(coders), len(units)), np.nan)
        for a, t in rows:
            won = {"left": t.left, "right": t.right}.get(a.choice)
            data[coders.index(a.rater), units.index((t.item, tuple(sorted((t.left, t.right)))))] = (
                codes[won] if won else len(codes))
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        got = next(r["alpha"] for r in result["krippendorff_alpha"] if r["question"] == question)
        assert got == pytest.approx(expected, abs=ALPHA_ABS_TOL)


def test_repeat_consistency(small_study):
    # Deterministic raters (no ties, huge strength gaps) always repeat themselves; the one careless
    # rater clicks at random.
    answers = simulate_answers(small_study, {"trecs": 40.0, "sd": 20.0, "gligen": 0.0}, nu=0.0, seed=8)
    _store(small_study, answers)
    for row in analyze(small_study, n_boot=0)["consistency"]:
        assert row["value"] == 1.0 and row["n"] == sum(t.kind == "repeat" for t in small_study.tasks)


def test_metric_human_agreement_by_hand(small_study):
    answers = simulate_answers(small_study, THETA, nu=0.3, seed=9)
    _store(small_study, answers)
    result = analyze(small_study, n_boot=0)
    tasks = small_study.task_map()
    for metric, spec in small_study.data["item_metrics"].items():
        for question in small_study.question_ids:
            agree = []
            for a in answers:
                t = tasks[a.task]
                if t.kind != "regular" or a.question != question or a.choice == "tie":
                    continue
                winner, loser = (t.left, t.right) if a.choice == "left" else (t.right, t.left)
                vw, vl = spec["values"][f"{t.item}\t{winner}"], spec["values"][f"{t.item}\t{loser}"]
                better = vw > vl if spec["higher_is_better"] else vw < vl
                agree.append(0.5 if vw == vl else float(better))
            row = next(r for r in result["metric_agreement"]
                       if (r["metric"], r["question"]) == (metric, question))
            assert row["value"] == pytest.approx(np.mean(agree)) and row["n"] == len(agree)
    assert {r["metric"] for r in result["metric_agreement"]} == {"clip_score", "r_precision",
                                                                  "trace_canvas_accuracy"}


def test_a_study_without_judgments_analyses_to_empty_rows(small_study):
    result = analyze(small_study, n_boot=5)
    assert result["judgments"] == 0 and result["attention"]["raters"] == 0
    assert all(r["n"] == 0 for r in result["win_rates"] + result["consistency"] + result["metric_agreement"])
    assert result["bradley_terry"] == []


def test_system_pairs_cover_every_combination(small_study):
    _store(small_study, simulate_answers(small_study, THETA, seed=10))
    result = analyze(small_study, n_boot=0)
    pairs = {(r["system"], r["opponent"]) for r in result["win_rates"]}
    assert pairs == set(itertools.combinations(small_study.systems, 2))


def test_metric_direction_is_respected(small_study):
    _store(small_study, simulate_answers(small_study, THETA, seed=11))
    frame = judgments_frame(small_study)
    regular = frame[frame["kind"] == "regular"]
    data = copy.deepcopy(small_study.data)
    data["item_metrics"]["clip_score"]["higher_is_better"] = False
    lower = metric_agreement(replace(small_study, data=data), regular)
    higher = metric_agreement(small_study, regular)
    for a, b in zip(lower, higher, strict=True):
        if a["metric"] == "clip_score":  # continuous values: no metric ties, so the shares complement
            assert a["value"] == pytest.approx(1.0 - b["value"])
        else:
            assert a["value"] == b["value"]

"""The frozen study: balanced sides, distinct raters per pair, attention checks, repeats, hashing."""

from __future__ import annotations

import collections
import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.human.conftest import SMALL_SPEC
from trecs_eval.errors import ConfigError, InputError, TrecsEvalError
from trecs_eval.human.plan import plan_study
from trecs_eval.human.store import Answer, open_store, record
from trecs_eval.human.study import HASH_FILE, QUESTIONS, STUDY_FILE, TOKENS_FILE, load_study

PROTOCOL_WORDING = {  # the exact wording the study protocol promises raters
    "realism": "Which image looks more like a real photograph?",
    "alignment": "Which image better matches the description?",
    "trace": "Which image places the described things where the trace points?",
}


def test_questions_have_the_promised_wording(small_study):
    assert QUESTIONS == PROTOCOL_WORDING
    assert [(q["id"], q["text"]) for q in small_study.questions] == list(PROTOCOL_WORDING.items())
    assert [q["trace_overlay"] for q in small_study.questions] == [False, False, True]


def test_every_pair_judged_by_distinct_raters_and_loads_balanced(small_study):
    regular = [t for t in small_study.tasks if t.kind == "regular"]
    units = collections.defaultdict(list)
    for t in regular:
        units[(t.item, frozenset((t.left, t.right)))].append(t.rater)
    assert len(units) == 10 * 3  # items x pairs
    for raters in units.values():
        assert len(raters) == SMALL_SPEC.judgments_per_pair
        assert len(set(raters)) == len(raters), "a rater saw an (item, pair) twice outside a repeat"
    seen = collections.Counter((t.rater, t.item, frozenset((t.left, t.right)))
                               for t in small_study.tasks if t.kind != "repeat")
    assert max(seen.values()) == 1, "a rater meets a pair twice (attention checks included) outside a repeat"
    loads = collections.Counter(t.rater for t in regular)
    assert max(loads.values()) - min(loads.values()) <= 1


def test_sides_balanced_per_rater_and_pair(small_study):
    sides = collections.Counter((t.rater, t.left, t.right) for t in small_study.tasks if t.kind == "regular")
    for (rater, left, right), n in sides.items():
        assert abs(n - sides.get((rater, right, left), 0)) <= 1, (rater, left, right)


def test_attention_checks_and_repeats_follow_the_plan(small_study):
    by_rater = collections.defaultdict(collections.Counter)
    for t in small_study.tasks:
        by_rater[t.rater][t.kind] += 1
    tasks = small_study.task_map()
    for rater, kinds in by_rater.items():
        assert kinds["attention"] == max(1, round(0.1 * kinds["regular"])), rater
        assert kinds["repeat"] == max(1, round(0.1 * kinds["regular"])), rater
    for t in small_study.tasks:
        if t.kind == "attention":
            assert {t.left, t.right} == {"real", "noise"}
        if t.kind == "repeat":
            first = tasks[t.repeat_of]
            assert (first.rater, first.item, first.kind) == (t.rater, t.item, "regular")
            assert (t.left, t.right) == (first.right, first.left), "a repeat swaps sides"
            order = [x.task for x in small_study.tasks_of(t.rater)]
            assert order.index(t.repeat_of) < order.index(t.task)


def test_same_seed_same_plan_and_images_copied(human_run, tmp_path, small_study):
    again = plan_study(human_run, tmp_path / "again", SMALL_SPEC)
    assert again.digest == small_study.digest
    other = plan_study(human_run, tmp_path / "other", replace(SMALL_SPEC, seed=8))
    assert other.digest != small_study.digest
    for item in small_study.items.values():
        assert item["narrative"] and item["trace"]
        for path in item["images"].values():
            assert (small_study.root / path).is_file()
    tokens = json.loads((small_study.root / TOKENS_FILE).read_text())
    assert len(set(tokens.values())) == len(small_study.raters)


def test_edited_study_is_refused(small_study):
    path = small_study.root / STUDY_FILE
    data = json.loads(path.read_text())
    data["questions"][0]["text"] = "Which image is prettier?"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=HASH_FILE):
        load_study(small_study.root)


def test_study_refuses_to_change_once_judged(human_run, small_study):
    replan = replace(SMALL_SPEC, seed=99)
    plan_study(human_run, small_study.root, replan)  # no judgment yet: re-planning is allowed
    study = load_study(small_study.root)
    db = open_store(study)
    record(db, [Answer(study.tasks[0].task, "realism", "left", study.tasks[0].rater)])
    db.close()
    with pytest.raises(TrecsEvalError, match="frozen"):
        plan_study(human_run, small_study.root, SMALL_SPEC)
    assert load_study(small_study.root).digest == study.digest


def test_bad_plans_are_refused(human_run, tmp_path: Path):
    with pytest.raises(ConfigError, match="did you mean 'trecs'"):
        plan_study(human_run, tmp_path / "a", replace(SMALL_SPEC, systems=("trec", "sd")))
    with pytest.raises(ConfigError, match="unknown question"):
        plan_study(human_run, tmp_path / "b", replace(SMALL_SPEC, questions=("beauty",)))
    with pytest.raises(ConfigError, match="only 12 item"):
        plan_study(human_run, tmp_path / "c", replace(SMALL_SPEC, n_items=50))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a study"):
        plan_study(human_run, mine, SMALL_SPEC)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_images_outside_the_run_are_refused(human_run, tmp_path):
    import shutil

    import pandas as pd

    run = tmp_path / "run"
    shutil.copytree(human_run, run)
    secret = tmp_path / "secret.png"
    secret.write_bytes(next((run / "reference").iterdir()).read_bytes())
    samples = pd.read_parquet(run / "samples.parquet")
    samples.loc[samples["system"] == "sd", "image_path"] = "../secret.png"
    samples.to_parquet(run / "samples.parquet", index=False)
    with pytest.raises(InputError, match="outside the run directory"):
        plan_study(run, tmp_path / "study", replace(SMALL_SPEC, n_items=12))


def test_a_moved_run_plans_the_same_study(human_run, tmp_path, small_study):
    import shutil

    moved = tmp_path / "elsewhere" / human_run.name
    shutil.copytree(human_run, moved)
    assert plan_study(moved, tmp_path / "again", SMALL_SPEC).digest == small_study.digest

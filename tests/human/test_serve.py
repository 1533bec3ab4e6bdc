"""The study server over loopback: a full simulated study, hostile requests, kill -9."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from tests.human.conftest import HOSTILE_SYSTEM, SMALL_SPEC
from tests.human.server_client import complete, current_task, request, submit
from tests.report_fixtures import HOSTILE_CAPTION, make_run_dir
from trecs_eval.human.analyze import analyze
from trecs_eval.human.plan import plan_study
from trecs_eval.human.serve import MAX_BODY, start_server
from trecs_eval.human.simulate import simulate_answers
from trecs_eval.human.store import judgments_frame
from trecs_eval.human.study import TOKENS_FILE

REPO = Path(__file__).resolve().parents[2]
THETA = {"trecs": 1.0, "sd": 0.0, HOSTILE_SYSTEM: -1.0}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("hostile") / "run", n_items=6,
                        systems=("trecs", "sd", HOSTILE_SYSTEM, "real", "noise"))


@pytest.fixture
def served(hostile_run, tmp_path):
    spec = replace(SMALL_SPEC, systems=("trecs", "sd", HOSTILE_SYSTEM), n_items=6, tasks_per_rater=12)
    study = plan_study(hostile_run, tmp_path / "study", spec)
    server, thread = start_server(study)
    tokens = json.loads((study.root / TOKENS_FILE).read_text())
    yield study, server.server_address[1], tokens
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _by_task(study, answers):
    table = collections.defaultdict(dict)
    for a in answers:
        table[a.task][a.question] = a.choice
    return table


def test_full_simulated_study_through_the_server(served):
    study, port, tokens = served
    answers = simulate_answers(study, THETA, seed=3, careless_share=0.2)
    table = _by_task(study, answers)
    for rater, token in tokens.items():
        done = complete(port, token, table, limit=len(study.tasks_of(rater)) + 1)
        assert done == [t.task for t in study.tasks_of(rater)], "pages come in the planned order"
    frame = judgments_frame(study)
    assert {(r.task, r.question, r.choice, r.rater) for r in frame.itertuples()} == \
        {(a.task, a.question, a.choice, a.rater) for a in answers}
    assert len(frame) == len(answers) and (frame["seconds"] == 3.5).all()
    result = analyze(study, n_boot=10)
    assert result["judgments"] == len(answers)


def test_page_escapes_narrative_and_never_names_systems(served):
    study, port, tokens = served
    hostile = next(t for t in study.tasks if study.items[t.item]["narrative"] == HOSTILE_CAPTION)
    token = tokens[hostile.rater]
    answers = _by_task(study, simulate_answers(study, THETA, seed=4, raters=[hostile.rater]))
    for _ in range(len(study.tasks_of(hostile.rater))):
        _, headers, page = request(port, "GET", f"/r/{token}")
        assert HOSTILE_SYSTEM not in page and "onerror" not in page
        assert "script-src 'nonce-" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        if f'value="{hostile.task}"' in page:
            assert '<script>console.error("xss-executed")</script>' not in page
            assert "&lt;script&gt;console.error(&quot;xss-executed&quot;)&lt;/script&gt;" in page
            return
        task = current_task(port, token)
        assert submit(port, token, task, answers[task]) == 303
    pytest.fail("the hostile item's page was never shown")


def test_forged_token_unknown_task_and_only_study_files(served):
    study, port, tokens = served
    rater, token = next(iter(tokens.items()))
    other = next(t for t in study.tasks if t.rater != rater)
    full = {q: "left" for q in study.question_ids}
    assert request(port, "GET", "/r/forgedtoken123456")[0] == 404
    assert submit(port, "forgedtoken123456", study.tasks[0].task, full) == 404
    assert submit(port, token, other.task, full) == 404, "another rater's page"
    assert submit(port, token, "r999-0001", full) == 404, "a page not in the study"
    assert submit(port, token, study.tasks_of(rater)[0].task, {"realism": "left"}) == 400
    assert submit(port, token, study.tasks_of(rater)[0].task, dict(full, realism="<b>")) == 400
    many = {f"x{k}": "left" for k in range(200)}
    assert submit(port, token, study.tasks_of(rater)[0].task, dict(full, **many)) == 400
    image = next(iter(study.image_files()))
    assert request(port, "GET", f"/images/{image}")[0] == 200
    for path in ("/study.json", f"/{TOKENS_FILE}", "/images/../study.json", "/images/%2e%2e/raters.json",
                 "/judgments.sqlite", "/images/" + "0" * 64 + ".png", "/"):
        assert request(port, "GET", path)[0] == 404, path
    assert judgments_frame(study).empty


def test_replayed_and_conflicting_submissions(served):
    study, port, tokens = served
    rater, token = next(iter(tokens.items()))
    task = study.tasks_of(rater)[0].task
    first = {q: "left" for q in study.question_ids}
    assert submit(port, token, task, first) == 303
    assert submit(port, token, task, first) == 303  # a replay is accepted and changes nothing
    assert submit(port, token, task, {q: "right" for q in study.question_ids}) == 409
    frame = judgments_frame(study)
    assert len(frame) == len(study.question_ids) and set(frame["choice"]) == {"left"}


def test_ten_megabyte_post_is_refused_unread(served):
    import http.client

    _, port, tokens = served
    token = next(iter(tokens.values()))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", f"/r/{token}/submit")
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(10 * 1024 * 1024))
    conn.endheaders()
    with contextlib.suppress(OSError):  # the server may answer and close without reading the rest
        conn.send(b"x" * (4 * MAX_BODY))
    assert conn.getresponse().status == 413
    conn.close()
    assert request(port, "GET", f"/r/{token}")[0] == 200, "the server still serves"


def test_two_raters_submit_at_once(served):
    study, port, tokens = served
    answers = simulate_answers(study, THETA, seed=5)
    table = _by_task(study, answers)
    chosen = list(tokens.items())[:2]
    barrier, errors = threading.Barrier(2), []

    def rate(rater, token):
        try:
            barrier.wait(timeout=10)
            complete(port, token, table, limit=len(study.tasks_of(rater)) + 1)
        except Exception as err:  # collected: an assertion in a thread would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=rate, args=pair) for pair in chosen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    expected = {(a.task, a.question, a.choice) for a in answers if a.rater in dict(chosen)}
    assert {(r.task, r.question, r.choice) for r in judgments_frame(study).itertuples()} == expected


def test_kill_9_loses_no_acknowledged_judgment(hostile_run, tmp_path):
    spec = replace(SMALL_SPEC, systems=("trecs", "sd", HOSTILE_SYSTEM), n_items=6, tasks_per_rater=12)
    study = plan_study(hostile_run, tmp_path / "study", spec)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "trecs_eval", "human", "serve", str(study.root), "--port", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            cwd=REPO)
    try:
        rater, link = proc.stdout.readline().strip().split("\t")
        port, token = int(link.split(":")[2].split("/")[0]), link.rsplit("/", 1)[1]
        table = _by_task(study, simulate_answers(study, THETA, seed=6, raters=[rater]))
        acknowledged = []
        for _ in range(5):
            task = current_task(port, token)
            assert submit(port, token, task, table[task]) == 303
            acknowledged.append(task)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    frame = judgments_frame(study)
    assert sorted(set(frame["task"])) == sorted(acknowledged)
    assert len(frame) == len(acknowledged) * len(study.question_ids)

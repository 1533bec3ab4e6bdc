"""`trecs-eval human` end to end on a demo-shaped run: plan, serve a full simulated study, analyze."""

from __future__ import annotations

import collections
import json

from tests.human.server_client import complete
from tests.report_fixtures import make_run_dir
from trecs_eval.cli import main
from trecs_eval.commands.demo import DEMO_SYSTEMS
from trecs_eval.human.serve import start_server
from trecs_eval.human.simulate import simulate_answers
from trecs_eval.human.store import judgments_frame
from trecs_eval.human.study import TOKENS_FILE, load_study

THETA = {"trecs-oracle": 1.0, "trecs": 0.3, "retrieval": -0.4}


def test_plan_serve_analyze_on_a_demo_shaped_run(tmp_path, capsys):
    run = make_run_dir(tmp_path / "demo", systems=tuple(s.name for s in DEMO_SYSTEMS), n_items=12)
    out = tmp_path / "studies" / "s1"
    argv = ["human", "plan", str(run), "--systems", "trecs,trecs-oracle,retrieval", "--questions",
            "realism,alignment,trace", "--judgments-per-pair", "3", "--items", "8", "--tasks-per-rater", "24",
            "--out", str(out)]
    assert main(argv) == 0
    assert "study hash" in capsys.readouterr().out
    study = load_study(out)
    assert study.attention["gold_system"] == "real" and study.attention["broken_system"] == "noise"
    table = collections.defaultdict(dict)
    answers = simulate_answers(study, THETA, seed=4, careless_share=0.25)
    for a in answers:
        table[a.task][a.question] = a.choice
    server, thread = start_server(study)
    try:
        for rater, token in json.loads((out / TOKENS_FILE).read_text()).items():
            complete(server.server_address[1], token, table, limit=len(study.tasks_of(rater)) + 1)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert len(judgments_frame(study)) == len(answers)
    assert main(argv) == 2, "a judged study cannot be re-planned"
    assert "frozen" in capsys.readouterr().err
    assert main(["human", "analyze", str(out), "--bootstrap", "20"]) == 0
    printed = capsys.readouterr().out
    assert "Bradley–Terry" in printed and "Krippendorff" in printed and "clip_score" in printed
    analysis = json.loads((out / "analysis.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert analysis["judgments"] == len(answers)
    assert (out / "analysis.md").read_text() == printed

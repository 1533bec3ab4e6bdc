"""A scripted rater completes a study in headless Chromium, using only the keyboard shortcuts."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.human.conftest import SMALL_SPEC
from trecs_eval.human.plan import plan_study
from trecs_eval.human.serve import start_server
from trecs_eval.human.simulate import simulate_answers
from trecs_eval.human.store import judgments_frame
from trecs_eval.human.study import TOKENS_FILE

CHROMIUM = Path("/usr/bin/chromium")
KEYS = {"left": "1", "tie": "2", "right": "3"}
PAGE_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page():
    if not CHROMIUM.is_file() or shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        yield page
        browser.close()


def test_scripted_rater_completes_the_study_in_chromium(human_run, tmp_path, browser_page):
    spec = replace(SMALL_SPEC, n_items=4, judgments_per_pair=1, tasks_per_rater=12)
    study = plan_study(human_run, tmp_path / "study", spec)
    rater = study.raters[0]
    token = json.loads((study.root / TOKENS_FILE).read_text())[rater]
    planned = {}
    for a in simulate_answers(study, {"trecs": 0.5, "sd": 0.0, "gligen": -0.5}, seed=1, raters=[rater]):
        planned.setdefault(a.task, {})[a.question] = a.choice
    server, thread = start_server(study)
    errors: list[str] = []
    page = browser_page
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/r/{token}")
        plan = study.tasks_of(rater)
        for k, task in enumerate(plan):
            assert page.locator("input[name=task]").get_attribute("value") == task.task
            assert f"Judgment {k + 1} of {len(plan)}" in page.locator(".progress").inner_text()
            for question in study.question_ids:
                current = page.locator("fieldset.current")
                if question == "trace":  # the trace is drawn while its question is the current one
                    assert "trace" in (page.locator("body").get_attribute("class") or "")
                assert current.get_attribute("data-trace") == ("1" if question == "trace" else "0")
                page.keyboard.press(KEYS[planned[task.task][question]])
            with page.expect_navigation():
                page.keyboard.press("Enter")
        assert "Thank you" in page.locator("h1").inner_text()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    frame = judgments_frame(study)
    assert {(r.task, r.question, r.choice) for r in frame.itertuples()} == {
        (t, q, c) for t, answers in planned.items() for q, c in answers.items()}
    assert len(frame) == len(planned) * len(study.question_ids)
    assert (frame["seconds"] > 0).all(), "time on task comes from the page"
    assert not errors, errors  # a blocked inline script (CSP) would show up here


def test_crowd_template_renders_a_task_in_chromium(small_study, tmp_path, browser_page):
    import csv
    import string

    from trecs_eval.human.crowd import export_study

    export_study(small_study, tmp_path / "export", None, "mturk")
    row = next(csv.DictReader((tmp_path / "export" / "tasks.csv").open(encoding="utf-8")))
    page_html = string.Template((tmp_path / "export" / "template.html").read_text()).substitute(row)
    (tmp_path / "hit.html").write_text(page_html, encoding="utf-8")
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((tmp_path / "hit.html").as_uri() + "?assignmentId=A1")
    assert page.locator("polyline.tr").first.get_attribute("points"), "the trace is drawn from ${trace}"
    assert page.locator("input[name=assignmentId]").get_attribute("value") == "A1"
    for key in ("1", "3", "2"):
        page.keyboard.press(key)
    checked = [page.locator(f"input[name={q}]:checked").get_attribute("value")
               for q in small_study.question_ids]
    assert checked == ["left", "right", "tie"]
    assert page.locator("input[name=task_id]").get_attribute("value") == small_study.tasks[0].task
    assert not errors, errors

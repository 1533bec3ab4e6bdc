"""The HTML report in a real browser: Debian's headless Chromium loads it, screenshots it, logs its console.

Chromium is started with background networking, sync, component updates and QUIC off, and a
throw-away profile. ``--enable-logging=stderr --v=0`` makes it log every page console message
as an ``INFO:CONSOLE`` line (errors, uncaught exceptions, CSP violations): the report has no
script, so any such line is a failure. A control page with a deliberate console error and an
uncaught exception proves the scan catches them, and that a near-empty page fails the
not-blank check.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reports import build_report
from tests.report_fixtures import (
    CANVAS_METRICS,
    CANVAS_SYSTEMS,
    DEMO_SYSTEMS,
    DENSITY_FAILED_WHY,
    IS_UNAVAILABLE_WHY,
    RANDOM_CLIP_METRICS,
    make_demo_shaped_run,
    make_run_dir,
)

pytestmark = pytest.mark.browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_TIMEOUT_S = 90
WINDOW = (1280, 2400)
# Grey-level standard deviation of a screenshot: a white page with a word of text is ~2;
# the report (table, charts, thumbnails) is far above. Not blank means above this.
MIN_SCREENSHOT_STD = 15.0
CONSOLE_MARKERS = ("CONSOLE", "Uncaught")


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no headless Chromium on PATH (tried {', '.join(CHROMIUM_NAMES)}); "
                "install it with `apt-get install chromium` (.ci/run does)")


def _screenshot(page: Path, out: Path, profile: Path) -> tuple[np.ndarray, list[str]]:
    """Load ``page``, save a screenshot to ``out``; return it as grey levels and the console lines."""
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={out}", page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    assert done.returncode == 0 and out.is_file(), f"chromium exit {done.returncode}: {done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if any(m in line for m in CONSOLE_MARKERS)]
    with Image.open(out) as image:
        grey = np.asarray(image.convert("L"), dtype=np.float64)
    return grey, console


def test_control_page_shows_the_checks_can_fail(tmp_path):
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><html><body><p>hi</p><script>console.error("control-error");'
                    "notDefinedAnywhere();</script></body></html>", encoding="utf-8")
    grey, console = _screenshot(page, tmp_path / "control.png", tmp_path / "profile")
    assert any("control-error" in line for line in console), console
    assert any("Uncaught ReferenceError" in line for line in console), console
    assert grey.std() < MIN_SCREENSHOT_STD


def test_report_renders_in_chromium_without_console_errors(tmp_path):
    _chromium()  # skip before building anything when there is no browser
    run = make_run_dir(tmp_path / "run", systems=("trecs", "retrieval"), n_items=10, uncalibrated=True)
    report = build_report(run, formats=("html",))["html"]
    grey, console = _screenshot(report, tmp_path / "report.png", tmp_path / "profile")
    assert console == [], console  # includes the hostile narrative's <script>: it must not run
    assert grey.shape == (WINDOW[1], WINDOW[0])
    assert grey.std() > MIN_SCREENSHOT_STD
    top = np.asarray(Image.open(tmp_path / "report.png").convert("RGB"))[:200].reshape(-1, 3).astype(int)
    red_banner = (top[:, 0] > 150) & (top[:, 1] < 40) & (top[:, 2] < 60)
    assert red_banner.mean() > 0.05  # the UNCALIBRATED banner is visible at the top of the page


# --- The demo-shaped report in a real browser (Playwright driving Debian's Chromium) -------------------

PAGE_WIDTH = 1400  # the summary must read without scrolling sideways at this width
# The stamp is #b00020 at alpha 0.35: over white it is (227, 166, 177), over a bar (111, 74, 126).
STAMP_COLOURS = ((227, 166, 177), (111, 74, 126))
STAMP_COLOUR_TOL = 14
STAMP_MIN_PIXELS = 300  # a stamped chart has ~800 such pixels
NO_STAMP_MAX_PIXELS = 60  # the anti-aliased edge of a red "failed" label has ~25


def _stamp_pixels(png: bytes) -> int:
    import io

    with Image.open(io.BytesIO(png)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
    return int(sum((np.abs(rgb - colour).max(axis=2) < STAMP_COLOUR_TOL).sum() for colour in STAMP_COLOURS))


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory):
    """The demo-shaped run's report, open in Chromium at PAGE_WIDTH; yields (page, console messages)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (test extra) is "
                                   "not installed; `pip install -e .[test]` installs it")
    executable = _chromium()
    run = make_demo_shaped_run(tmp_path_factory.mktemp("browser") / "demo")
    report = build_report(run, formats=("html",))["html"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-quic"])
        page = browser.new_page(viewport={"width": PAGE_WIDTH, "height": 1000})
        messages: list[str] = []
        page.on("console", lambda m: messages.append(m.text))
        page.on("pageerror", lambda e: messages.append(str(e)))
        page.goto(report.resolve().as_uri())
        yield page, messages
        browser.close()


def test_demo_report_stamps_only_random_weight_charts(demo_page):
    page, messages = demo_page
    charts = page.locator("figure.metric-chart, figure.distribution-chart, figure.per-label-chart").all()
    assert len(charts) > 2 * len(RANDOM_CLIP_METRICS)
    for chart in charts:  # a CLIP metric's distribution of per-sample scores is stamped too
        metric = chart.get_attribute("data-metric")
        caption = chart.locator("figcaption").inner_text()
        pixels = _stamp_pixels(chart.locator("img").screenshot())
        if metric in RANDOM_CLIP_METRICS:
            assert "UNCALIBRATED" in caption and pixels >= STAMP_MIN_PIXELS, (metric, caption, pixels)
        else:  # FID/KID (real weights), canvas and segmenter metrics (no weights): no stamp
            assert "UNCALIBRATED" not in caption and pixels <= NO_STAMP_MAX_PIXELS, (metric, caption, pixels)
    assert messages == []


def test_demo_report_says_not_applicable_unavailable_and_failed_apart(demo_page):
    page, _ = demo_page
    assert page.locator('figure.metric-chart[data-metric="is"]').count() == 0  # no empty frame
    line = page.locator('p.metric-line[data-metric="is"]').inner_text()
    assert "unavailable for every system" in line and IS_UNAVAILABLE_WHY in line and "failed" not in line
    no_canvas = ", ".join(s for s in DEMO_SYSTEMS if s not in CANVAS_SYSTEMS)
    for metric in CANVAS_METRICS:
        caption = page.locator(f'figure.metric-chart[data-metric="{metric}"] figcaption').inner_text()
        assert f"not applicable to {no_canvas}" in caption and "failed" not in caption, caption
    density = page.locator('figure.metric-chart[data-metric="density"] figcaption').inner_text()
    assert f"failed for noise: {DENSITY_FAILED_WHY}" in density
    summary = page.locator("#summary ~ section.family")
    cells = {status: summary.locator(f"td.{status}").all_inner_texts()
             for status in ("unavailable", "failed", "not_applicable")}
    assert set(cells["unavailable"]) == {"unavailable"} and len(cells["unavailable"]) == len(DEMO_SYSTEMS)
    assert cells["failed"] == ["failed"]
    assert set(cells["not_applicable"]) == {"n/a"}
    assert len(cells["not_applicable"]) == len(CANVAS_METRICS) * (len(DEMO_SYSTEMS) - len(CANVAS_SYSTEMS))
    assert summary.locator("td.unavailable").first.get_attribute("title") == IS_UNAVAILABLE_WHY


def test_demo_report_banner_once_and_no_sideways_scrolling(demo_page):
    page, _ = demo_page
    banners = page.locator(".banner.uncalibrated")
    assert banners.count() == 1 and banners.first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PAGE_WIDTH
    families = page.locator("section.family")
    assert families.count() >= 4
    for i in range(families.count()):
        box = families.nth(i).locator("table.summary").bounding_box()
        assert box is not None and box["x"] + box["width"] <= PAGE_WIDTH, (i, box)

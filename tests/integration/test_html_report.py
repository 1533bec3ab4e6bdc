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
from tests.report_fixtures import make_run_dir

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

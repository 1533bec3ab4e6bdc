"""`trecs-eval report` / `compare` end to end on synthetic run directories, and the HTML content."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from reports import build_report
from reports.html import gallery, render_html
from reports.load import load_run
from tests.report_fixtures import HOSTILE_CAPTION, make_run_dir
from trecs_eval.cli import main

SYSTEMS = ("trecs", "retrieval")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("cli") / "run", systems=SYSTEMS, n_items=12)


@pytest.fixture(scope="module")
def html(run_dir) -> str:
    return render_html(run_dir, gallery_size=12)  # every item, so the hostile one is in the gallery


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("trecs-eval: error: "), err
    return err


@pytest.mark.parametrize("fmt", ["md", "tex", "csv"])
def test_report_text_formats_print_and_write(run_dir, fmt, capsys):
    assert main(["report", str(run_dir), "--format", fmt]) == 0
    out = capsys.readouterr().out
    written = (run_dir / "report" / f"summary.{fmt}").read_text(encoding="utf-8")
    assert out == written
    if fmt == "csv":
        assert list(pd.read_csv(io.StringIO(out))["system"]) == list(SYSTEMS)
    else:
        assert "FID" in out and "trecs" in out


def test_report_several_formats_into_a_directory(run_dir, tmp_path):
    assert main(["-q", "report", str(run_dir), "--format", "md,html", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.html", "summary.md"]


def test_report_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a directory" in _one_line_error(capsys)
    assert main(["report", str(tmp_path), "--format", "mdd"]) == 2
    assert "did you mean 'md'" in _one_line_error(capsys)
    assert main(["report"]) == 2
    assert "--history" in _one_line_error(capsys)


def test_compare_cli_exit_codes_and_junit(tmp_path, capsys):
    a = make_run_dir(tmp_path / "a", systems=("trecs",), n_items=16)
    same = make_run_dir(tmp_path / "same", systems=("trecs",), n_items=16)
    shifted = make_run_dir(tmp_path / "shifted", systems=("trecs",), n_items=16, feature_shift={"trecs": 0.6})
    other = make_run_dir(tmp_path / "other", systems=("trecs",), n_items=16,
                         inception_identity={"name": "other-net"})
    fast = ["--n-resamples", "100", "--metrics", "fid,clip_score"]
    assert main(["compare", str(a), str(same), *fast]) == 0
    assert "PASS" in capsys.readouterr().out
    junit = tmp_path / "gate.xml"
    assert main(["compare", str(a), str(shifted), *fast, "--format", "junit", "--out", str(junit)]) == 1
    assert "FAIL" in capsys.readouterr().out  # the Markdown summary still goes to stdout
    failures = ET.parse(junit).getroot().findall("testcase/failure")
    assert [f.get("message") for f in failures] == ["fid worse beyond threshold 0"]
    assert main(["compare", str(a), str(shifted), *fast, "--thresholds", "fid=+1000"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(other), *fast]) == 2
    assert "extractor 'inception' differs" in _one_line_error(capsys)
    assert main(["compare", str(a), str(other), *fast, "--allow-mismatch"]) == 0


def test_history_cli_md_and_html(tmp_path, capsys):
    for i in range(2):
        make_run_dir(tmp_path / "runs" / f"r{i}", systems=("trecs",), n_items=3,
                     created=f"2026-11-2{i}T09:00:00+00:00", git_commit=f"deadbee{i}")
    assert main(["report", "--history", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.index("deadbee0") < out.index("deadbee1")
    assert main(["-q", "report", "--history", str(tmp_path / "runs"), "--format", "html"]) == 0
    html = (tmp_path / "runs" / "history.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 6  # one chart per metric of the fixture


def test_build_report_api_writes_requested_formats(run_dir, tmp_path):
    paths = build_report(run_dir, formats=("md", "tex", "csv", "html"), out_dir=tmp_path)
    assert {k: p.name for k, p in paths.items()} == {"md": "summary.md", "tex": "summary.tex",
                                                     "csv": "summary.csv", "html": "report.html"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())


def test_html_escapes_untrusted_narratives(html):
    assert "<script" not in html.lower()
    assert "&lt;script&gt;console.error(&#34;xss-executed&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;sit&lt;/b&gt;" in html and "<b>sit</b>" not in html
    assert HOSTILE_CAPTION not in html


def test_html_has_every_section_and_is_self_contained(html):
    for section in ("summary", "metrics", "per-label", "distributions", "gallery", "extremes", "provenance"):
        assert f'id="{section}"' in html
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing loaded from outside the file
    assert html.count('alt="bar chart of') == 6
    assert "Trace-canvas acc. per COCO-Stuff label" in html
    assert html.count('class="item"') == 12
    for system in SYSTEMS:
        assert f"<h3>{system}: CLIPScore (higher is better)</h3>" in html
    assert "abc1234" in html and "inception-v3-compat" in html  # commit and extractor identity


def test_gallery_sample_depends_only_on_seed(run_dir):
    run = load_run(run_dir)

    def items(seed: int) -> list[str]:
        return [entry["item_id"] for entry in gallery(run, size=4, seed=seed)]

    assert items(1) == items(1) and len(items(1)) == 4
    assert items(1) != items(2)


def test_html_says_when_data_is_absent_or_files_are_missing(tmp_path):
    run = make_run_dir(tmp_path / "run", systems=("trecs",), n_items=3,
                       values={"fid": (40.0,), "clip_score": (27.0,)})
    (run / "images" / "trecs" / "img0001_7.png").unlink()
    html = render_html(run, gallery_size=3)
    assert "No per-label data in this run" in html
    assert "missing file:" in html and "img0001_7.png" in html

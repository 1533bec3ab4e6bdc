"""Rehearsal of the real benchmarks, offline: the README's "Real benchmark" commands, verbatim,
against a miniature of every real source (``tests/miniature.py``) served on 127.0.0.1.

Only this is added to the README's commands: ``-q``, and on ``run`` the documented overrides
``--limit``, ``--metrics`` (kid and r_precision need more narratives than a fast test affords)
and ``--uncalibrated-weights`` (no pretrained weights here). The shipped configs are copied unchanged into
the working directory the commands run in (their paths are relative to it).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import shlex
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.miniature import Mirror, build_mirror
from trecs_eval.cli import main
from trecs_eval.data.download import BASE_URL_ENV
from trecs_eval.data.download_sources import SOURCES
from trecs_eval.data.toyworld import write_toyworld
from trecs_eval.results import read_results

RUN_LIMIT = 4  # narratives per run: cheap on 2 cores
# kid (>= 50 images), is (>= 10 splits) and r_precision (>= 100 narratives) are left out at this size
RUN_METRICS = "fid,clip_score,trace_canvas_accuracy,canvas_pixel_accuracy,canvas_miou"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory, sequence_labels_dir: Path) -> Mirror:
    toy = tmp_path_factory.mktemp("toy") / "world"
    write_toyworld(toy, n=21, seed=7, image_size=64, shifted=False, progress=False)
    return build_mirror(tmp_path_factory.mktemp("mirror"), toy, sequence_labels_dir)


@pytest.fixture(autouse=True)
def labels_pinned_as_served(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    """The downloader checks the TReCS label files against the released files' sha256. The mirror
    serves the files at hand: the full released ones (then this changes nothing) or the vendored
    subset, whose own sha256 are pinned for the rehearsal. The real pins are checked against the
    full files by ``test_download.py::test_pinned_checksums_of_the_real_trecs_files``."""
    source = SOURCES["trecs-labels"]
    served = mirror.root / "sequence_labels"
    files = tuple(f if f.sha256 is None else
                  dataclasses.replace(f, sha256=hashlib.sha256((served / f.name).read_bytes()).hexdigest())
                  for f in source.files)
    monkeypatch.setitem(SOURCES, "trecs-labels", dataclasses.replace(source, files=files))


@pytest.fixture(scope="module")
def server(mirror: Mirror) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(mirror.root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def weights_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature/weights cache for both rehearsals (the random weights are made once)."""
    return tmp_path_factory.mktemp("cache")


def readme_commands(benchmark: str) -> list[str]:
    """The ``trecs-eval`` lines of the README's code block headed ``# {benchmark}``."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Real benchmark", 1)[1].split("\n## ", 1)[0]
    block = re.search(rf"```bash\n# {re.escape(benchmark)}\n(.*?)```", section, re.S)
    assert block, f"README's Real benchmark section has no ```bash block starting with '# {benchmark}'"
    joined = block.group(1).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("trecs-eval ")]


def _run(command: str, extra: list[str] = ()) -> int:
    argv = shlex.split(command)[1:]
    return main(["-q", *argv, *extra])


def rehearse(benchmark: str, config: str, project: Path, server: str, monkeypatch: pytest.MonkeyPatch,
             cache: Path) -> Path:
    """Run the README's commands for ``benchmark`` in ``project``; returns the run directory."""
    (project / "configs").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "configs" / config, project / "configs" / config)
    monkeypatch.chdir(project)
    monkeypatch.setenv(BASE_URL_ENV, server)
    monkeypatch.setenv("TRECS_EVAL_CACHE", str(cache))
    commands = readme_commands(benchmark)
    kinds = [shlex.split(c)[1] for c in commands]
    assert kinds == ["data", "data", "run", "report", "compare"], commands
    assert _run(commands[0]) == 0  # download
    assert _run(commands[1]) == 0  # prepare
    metrics = ",".join(m for m in RUN_METRICS.split(",") if benchmark == "ln-coco" or "canvas" not in m)
    assert _run(commands[2], ["--limit", str(RUN_LIMIT), "--metrics", metrics, "--uncalibrated-weights"]) == 0
    assert _run(commands[3]) == 0  # report
    assert _run(commands[4]) == 0  # compare: a run against itself never regresses
    run_dir = project / shlex.split(commands[3])[2]
    return run_dir


def _scored(run_dir: Path) -> dict[str, set[str]]:
    results = read_results(run_dir)
    out: dict[str, set[str]] = {}
    for metric in results.metrics:
        if metric.value is not None and metric.value == metric.value:  # computed, not NaN
            out.setdefault(metric.system, set()).add(metric.name)
    return out


@pytest.mark.slow  # ~90 s of CPU: download, prepare (neural tagger), run, report, compare
def test_ln_coco_rehearsal(mirror, server, tmp_path, monkeypatch, weights_cache):
    run_dir = rehearse("ln-coco", "ln_coco_val.toml", tmp_path, server, monkeypatch, weights_cache)
    data = tmp_path / "data"
    prepared = json.loads((data / "prepared.json").read_text())
    assert prepared["ln-coco/evalset"]["summary"]["gold tags"] == len(mirror.coco_val_ids)
    assert prepared["ln-coco/evalset"]["summary"]["gold maps"] == len(mirror.coco_val_ids)
    assert prepared["train/bank"]["summary"]["images"] == len(mirror.train_image_ids)
    assert prepared["train/tagger"]["summary"]["kind"] == "neural"  # the default, at tiny size
    # the training tags came under their other name, and the manifest pinned them
    manifest = json.loads((data / "manifest.json").read_text())["files"]
    assert "trecs_sequence_labels/train_coco.cleaned_tags.txt" in manifest
    scored = _scored(run_dir)
    assert set(scored) == {"trecs", "trecs-oracle", "trecs-released", "retrieval", "real", "noise"}
    assert {"trace_canvas_accuracy", "canvas_miou"} <= scored["trecs-oracle"]
    assert {"fid", "clip_score"} <= scored["trecs-released"]
    assert (run_dir / "report").is_dir()
    # prepare again: every step is recorded as done and nothing is rebuilt
    bank_mtime = (data / "trecs_train" / "bank" / "bank.json").stat().st_mtime_ns
    assert main(["-q", "data", "prepare", "ln-coco"]) == 0
    assert (data / "trecs_train" / "bank" / "bank.json").stat().st_mtime_ns == bank_mtime


@pytest.mark.slow
def test_ln_openimages_rehearsal(mirror, server, tmp_path, monkeypatch, weights_cache, capsys):
    # first, one image is missing on the server: the download lists it and exits 2; the rest stays
    absent = mirror.root / "validation" / f"{mirror.oi_val_ids[0].rpartition('_')[0]}.jpg"
    held = absent.read_bytes()
    absent.unlink()
    monkeypatch.setenv(BASE_URL_ENV, server)
    data = tmp_path / "data"
    for name in ("trecs-labels", "openimages-val-images"):
        code = main(["-q", "data", "download", name, "--root", str(data)])
    n_ids = len((data / "trecs_sequence_labels" / "val_oi.ids.txt").read_bytes().splitlines())
    assert code == 2 and f"1 of {n_ids} images failed" in capsys.readouterr().err
    failed = (data / "openimages" / "validation" / "failed.txt").read_text()
    assert failed.startswith(absent.stem + "\t") and len(failed.splitlines()) == 1
    absent.write_bytes(held)
    run_dir = rehearse("ln-openimages", "ln_openimages_val.toml", tmp_path, server, monkeypatch,
                       weights_cache)
    assert (data / "openimages" / "validation" / "failed.txt").read_text() == ""
    prepared = json.loads((data / "prepared.json").read_text())
    assert prepared["ln-openimages/evalset"]["summary"]["reference images"] == len(mirror.oi_val_ids)
    scored = _scored(run_dir)
    assert set(scored) == {"trecs", "trecs-released", "retrieval", "real", "noise"}
    assert {"fid", "clip_score"} <= scored["trecs"]


def test_download_list_says_what_is_present(mirror, server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(BASE_URL_ENV, server)
    assert main(["-q", "data", "download", "ln-coco-val", "--root", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["data", "download", "--list", "--root", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert " present " in lines["ln-coco-val"] and " absent " in lines["coco-val2017"]
    assert "absent (needs trecs-labels first)" in lines["openimages-val-images"]
    assert "collage synthesizer" in lines["coco-train2017"]

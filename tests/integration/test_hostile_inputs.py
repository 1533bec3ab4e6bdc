"""Hostile inputs against the CLI: each case exits 2 with one error line naming the file,
no traceback, and every file the user had is still there, byte for byte.

Each entry of ``CASES`` builds its hostile input under ``tmp_path`` and returns the arguments and the
strings the error line must name. Runs use tiny data and fail before any model is built; the few
behaviours that are not an error (a damaged run in a history, a full disk mid-run, a second run on
a locked directory, a corrected config after a failed run) have their own tests below.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.report_fixtures import make_run_dir
from trecs_eval.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
Setup = Callable[[Path], tuple[list[str], list[str]]]  # tmp_path -> (argv, strings the error must name)


def _config(path: Path, out_dir: Path | str, body: str = "") -> Path:
    path.write_text(f'name = "h"\nout_dir = "{out_dir}"\nimage_size = 32\ndevice = "cpu"\n'
                    f'report_formats = ["md"]\n{body}\n[[systems]]\nname = "noise"\n', encoding="utf-8")
    return path


def _png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid PNG header announcing side x side pixels (over PIL's limit) and almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _images(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / name)
    return folder


# ---------------------------------------------------------------- the cases


def config_not_utf8(tmp: Path) -> tuple[list[str], list[str]]:
    path = tmp / "latin1.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    return ["run", str(path)], [str(path), "UTF-8"]


def config_is_a_directory(tmp: Path) -> tuple[list[str], list[str]]:
    (tmp / "configs").mkdir()
    return ["run", str(tmp / "configs")], [str(tmp / "configs"), "directory"]


def out_dir_is_root(tmp: Path) -> tuple[list[str], list[str]]:
    path = _config(tmp / "c.toml", "/")
    return ["run", str(path), "--uncalibrated-weights"], [str(path), "out_dir", "filesystem root"]


def out_dir_is_parent(tmp: Path) -> tuple[list[str], list[str]]:
    path = _config(tmp / "c.toml", "..")
    return ["run", str(path)], [str(path), "out_dir", "parent of the current directory"]


def out_dir_under_a_file(tmp: Path) -> tuple[list[str], list[str]]:
    (tmp / "notes.txt").write_text("user notes")
    path = _config(tmp / "c.toml", tmp / "notes.txt" / "run")
    return ["run", str(path)], [str(path), str(tmp / "notes.txt"), "is a file"]


def out_dir_is_a_user_folder(tmp: Path) -> tuple[list[str], list[str]]:
    project = tmp / "myproject"
    project.mkdir()
    (project / "config.toml").write_text("# the user's own config\n")
    path = _config(tmp / "c.toml", project)
    return ["run", str(path)], [str(project), "not made by `trecs-eval run`"]


def force_on_a_user_folder(tmp: Path) -> tuple[list[str], list[str]]:
    photos = tmp / "photos"
    _images(photos / "images" / "holiday", ["photo.png"])
    path = _config(tmp / "c.toml", photos)
    return ["run", str(path), "--force"], [str(photos), "not made by `trecs-eval run`"]


def negative_n(tmp: Path) -> tuple[list[str], list[str]]:
    path = _config(tmp / "c.toml", tmp / "out", '[dataset]\nkind = "toyworld"\nn = -3')
    return ["run", str(path)], [str(path), "dataset.n = -3"]


def image_size_zero(tmp: Path) -> tuple[list[str], list[str]]:
    path = _config(tmp / "c.toml", tmp / "out", '[dataset]\nkind = "toyworld"\nimage_size = 0')
    return ["run", str(path)], [str(path), "dataset.image_size = 0"]


def metric_parameter_typo(tmp: Path) -> tuple[list[str], list[str]]:
    path = _config(tmp / "c.toml", tmp / "out", '[[metrics]]\nname = "fid"\nparams = { n_resampels = 5 }')
    return ["run", str(path)], [str(path), "metrics[0]", "'n_resampels'", "did you mean 'n_resamples'"]


def reference_stats_with_object_array(tmp: Path) -> tuple[list[str], list[str]]:
    stats = tmp / "stats.npz"
    np.savez(stats, mu=np.array([{"pickled": True}], dtype=object), sigma=np.eye(1), n=np.int64(3),
             identity=np.array("{}"))
    path = _config(tmp / "c.toml", tmp / "out", f'[reference]\nkind = "stats"\nstats = "{stats}"')
    return ["run", str(path)], [str(stats), "Object arrays cannot be loaded"]


def reference_images_share_a_stem(tmp: Path) -> tuple[list[str], list[str]]:
    folder = _images(tmp / "real", ["a.png", "a.jpg", "b.png"])
    path = _config(tmp / "c.toml", tmp / "out", f'[reference]\nkind = "images"\nimages = "{folder}"')
    return ["run", str(path)], [str(folder / "a.jpg"), str(folder / "a.png")]


def toyworld_over_a_download_folder(tmp: Path) -> tuple[list[str], list[str]]:
    folder = tmp / "downloads"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": "trecs-eval/download", "files": {}}))
    (folder / "coco_val_localized_narratives.jsonl").write_text('{"downloaded": true}\n')
    return ["data", "toyworld", "--out", str(folder), "--n", "2", "--image-size", "32"], [str(folder)]


def toyworld_out_under_a_file(tmp: Path) -> tuple[list[str], list[str]]:
    (tmp / "notes.txt").write_text("user notes")
    out = tmp / "notes.txt" / "toy"
    return ["data", "toyworld", "--out", str(out), "--n", "2", "--image-size", "32"], [str(tmp / "notes.txt")]


def empty_narratives_file(tmp: Path) -> tuple[list[str], list[str]]:
    (tmp / "empty.jsonl").write_text("")
    return ["data", "check", str(tmp / "empty.jsonl")], [str(tmp / "empty.jsonl"), "no narratives"]


def _run_with_results(tmp: Path, edit: Callable[[dict], None]) -> Path:
    run = make_run_dir(tmp / "run", n_items=12, n_reference=16)
    path = run / "results.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return run


def results_with_a_string_value(tmp: Path) -> tuple[list[str], list[str]]:
    run = _run_with_results(tmp, lambda d: d["metrics"][0].update(value="12.5"))
    return ["report", str(run), "--out", "-"], [str(run / "results.json"), "metrics[0].value", "'12.5'"]


def results_with_a_tampered_status(tmp: Path) -> tuple[list[str], list[str]]:
    run = _run_with_results(tmp, lambda d: d["metrics"][1].update(status='ok"><script>x()</script>'))
    return ["report", str(run), "--format", "html"], [str(run / "results.json"), "metrics[1].status"]


def report_out_under_a_file(tmp: Path) -> tuple[list[str], list[str]]:
    run = make_run_dir(tmp / "run", n_items=12, n_reference=16)
    (tmp / "notes.txt").write_text("user notes")
    return ["report", str(run), "--out", str(tmp / "notes.txt" / "summary.md")], [str(tmp / "notes.txt")]


def compare_with_corrupt_features(tmp: Path) -> tuple[list[str], list[str]]:
    run_a = make_run_dir(tmp / "a", n_items=12, n_reference=16)
    run_b = make_run_dir(tmp / "b", n_items=12, n_reference=16)
    features = run_b / "features" / "trecs.npz"
    features.write_bytes(features.read_bytes()[:200])  # truncated zip
    return ["compare", str(run_a), str(run_b), "--n-resamples", "5"], [str(features)]


def metrics_on_a_decompression_bomb(tmp: Path) -> tuple[list[str], list[str]]:
    folder = _images(tmp / "gen", ["x.png"])
    bomb = _png_bomb(folder / "bomb.png")
    return (["metrics", "--generated", str(folder), "--metrics", "is", "--uncalibrated-weights"],
            [str(bomb), "decompression bomb"])


def metrics_with_a_cache_that_is_not_a_database(tmp: Path) -> tuple[list[str], list[str]]:
    cache = tmp / "cache"
    cache.mkdir()
    (cache / "features.sqlite").write_bytes(b"not a database, a user's file" * 100)
    os.environ["TRECS_EVAL_CACHE"] = str(cache)  # restored by the autouse cache fixture's monkeypatch
    folder = _images(tmp / "gen", ["x.png", "y.png"])
    return (["metrics", "--generated", str(folder), "--metrics", "is", "--uncalibrated-weights"],
            [str(cache / "features.sqlite"), "deleting it is safe"])


def metrics_with_a_cache_path_under_a_file(tmp: Path) -> tuple[list[str], list[str]]:
    (tmp / "cachefile").write_text("user file")
    os.environ["TRECS_EVAL_CACHE"] = str(tmp / "cachefile")
    folder = _images(tmp / "gen", ["x.png", "y.png"])
    return (["metrics", "--generated", str(folder), "--metrics", "is", "--uncalibrated-weights"],
            [str(tmp / "cachefile"), "is a file"])


CASES: dict[str, Setup] = {f.__name__: f for f in (
    config_not_utf8, config_is_a_directory, out_dir_is_root, out_dir_is_parent, out_dir_under_a_file,
    out_dir_is_a_user_folder, force_on_a_user_folder, negative_n, image_size_zero, metric_parameter_typo,
    reference_stats_with_object_array, reference_images_share_a_stem, toyworld_over_a_download_folder,
    toyworld_out_under_a_file, empty_narratives_file, results_with_a_string_value,
    results_with_a_tampered_status, report_out_under_a_file, compare_with_corrupt_features,
    metrics_on_a_decompression_bomb, metrics_with_a_cache_that_is_not_a_database,
    metrics_with_a_cache_path_under_a_file)}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the user's files), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_one_error_line(code: int, stderr: str, names: list[str]) -> str:
    """Exit 2, no traceback, one ``trecs-eval: error:`` line (plus at most its hint) naming ``names``."""
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("trecs-eval: error: ")]
    assert len(errors) == 1, stderr
    assert all(line in errors or line.startswith("  hint: ") for line in lines), stderr
    for name in names:
        assert name in errors[0], f"{name!r} not in {errors[0]!r}"
    return errors[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_one_error_line_and_no_user_file_is_lost(case: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TRECS_EVAL_CACHE", os.environ["TRECS_EVAL_CACHE"])  # undone after the test
    argv, names = CASES[case](tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(["-q", *argv])
    assert_one_error_line(code, capsys.readouterr().err, names)
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing lost, nothing changed
    assert not (tmp_path / "out").exists()  # a refused run claims nothing


def test_the_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The same contract through ``python -m trecs_eval`` (logging and the banner included)."""
    argv, names = out_dir_under_a_file(tmp_path)
    done = subprocess.run([sys.executable, "-m", "trecs_eval", "-q", *argv, "--uncalibrated-weights"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert_one_error_line(done.returncode, done.stderr, names)


def test_history_skips_and_flags_a_damaged_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    runs = tmp_path / "runs"
    make_run_dir(runs / "good", n_items=12, n_reference=16)
    make_run_dir(runs / "old", n_items=12, n_reference=16, created="2026-11-20T10:00:00+00:00")
    bad = _run_with_results(runs, lambda d: d["metrics"][0].update(n="many"))
    assert main(["-q", "report", "--history", str(runs), "--out", "-"]) == 0
    assert str(bad) in caplog.text and "metrics[0].n" in caplog.text
    from reports.history import load_history

    history = load_history(runs)
    assert [r.run_dir.name for r in history.runs] == ["old", "good"]
    assert len(history.skipped) == 1 and "metrics[0].n" in history.skipped[0]
    html = tmp_path / "history.html"
    assert main(["-q", "report", "--history", str(runs), "--format", "html", "--out", str(html)]) == 0
    assert "skipped (unreadable): run:" in html.read_text()


def test_toyworld_still_replaces_its_own_folder(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    assert main(["-q", "data", "toyworld", "--out", str(out), "--n", "2", "--image-size", "32"]) == 0
    assert main(["-q", "data", "toyworld", "--out", str(out), "--n", "3", "--image-size", "32"]) == 0  # ours
    assert len(json.loads((out / "manifest.json").read_text())["item_ids"]) == 3


def test_html_escapes_the_status_attribute() -> None:
    from reports.tables import Cell, Column, Table

    table = Table("t", (Column("k", "h", True, 2),), ("row",), ((Cell(1.0, status='x" onclick="y()'),),),
                  uncalibrated=False)
    assert 'class="x&quot; onclick=&quot;y()"' in table.to_html()


# ---------------------------------------------------------------- runs that fail part-way


def _toyworld_config(tmp: Path, out: Path, n: int = 4) -> Path:
    return _config(tmp / f"toy{n}.toml", out, f'[dataset]\nkind = "toyworld"\nn = {n}\nimage_size = 32\n'
                                              f'path = "{tmp / f"data{n}"}"')


def test_a_failed_run_without_outputs_does_not_bind_its_folder(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    _images(tmp_path / "imgs", ["x.png"])
    out = tmp_path / "out"
    narratives, images = tmp_path / "bad.jsonl", tmp_path / "imgs"
    bad = _config(tmp_path / "bad.toml", out, f'[dataset]\nkind = "localized_narratives"\n'
                                              f'narratives = "{narratives}"\nimages = "{images}"')
    assert_one_error_line(main(["-q", "run", str(bad)]), capsys.readouterr().err, [str(narratives)])
    assert main(["-q", "run", str(_toyworld_config(tmp_path, out))]) == 0  # no --force needed
    assert (out / "results.json").is_file()


def test_a_full_disk_mid_run_keeps_what_was_computed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    config = _toyworld_config(tmp_path, out, n=6)
    assert main(["-q", "data", "toyworld", "--out", str(tmp_path / "data6"), "--n", "6", "--image-size",
                 "32", "--no-shifted"]) == 0
    from trecs_eval import atomic

    real_replace, calls = os.replace, {"n": 0}

    def replace_until_full(src: str, dst: str) -> None:
        if str(dst).endswith(".png") and "/images/noise/" in str(dst):
            calls["n"] += 1
            if calls["n"] > 3:  # the fourth generated image finds the disk full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace_until_full)
    line = assert_one_error_line(main(["-q", "run", str(config)]), capsys.readouterr().err,
                                 ["cannot write", str(out / "images" / "noise"), "No space left on device"])
    monkeypatch.undo()
    kept = sorted((out / "images" / "noise").iterdir())
    assert len(kept) == 3 and not [p for p in kept if p.name.startswith(".")], line  # no temp file left
    stamps = {p.name: p.stat().st_mtime_ns for p in kept}
    assert main(["-q", "run", str(config)]) == 0  # resumes: the three images are reused, not redone
    assert {p.name: p.stat().st_mtime_ns for p in kept} == stamps
    assert len(list((out / "images" / "noise").iterdir())) == 6


HOLD_LOCK = """
import sys, time
from pathlib import Path
from trecs_eval.rundir import lock_run_dir
lock_run_dir(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_run_on_a_locked_directory_is_refused_naming_the_pid(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    config = _toyworld_config(tmp_path, out)
    assert main(["-q", "run", str(config)]) == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(out)
        assert_one_error_line(main(["-q", "run", str(config)]), capsys.readouterr().err,
                              [str(out), f"pid {holder.pid} on"])
        assert snapshot(out) == before  # the refused run touched nothing
    finally:
        holder.kill()
        holder.wait()
    assert main(["-q", "run", str(config)]) == 0  # the dead holder's lock is taken over

"""``trecs-eval data ...`` end to end: exit codes, one-line errors, toyworld read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from trecs_eval.cli import main
from trecs_eval.data.coco_stuff import CocoAnnotations
from trecs_eval.data.evalset import load_toyworld, read_gold_segmentation
from trecs_eval.data.localized_narratives import read_narratives
from trecs_eval.data.sequence_labels import read_sequence_labels

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD = {"dataset_id": "x", "image_id": "1", "annotator_id": 1, "caption": "a dog",
        "timed_caption": [{"utterance": "a dog", "start_time": 0.0, "end_time": 1.0}],
        "traces": [[{"x": 0.5, "y": 0.5, "t": 0.5}]], "voice_recording": ""}


def _bad_file(tmp_path: Path) -> Path:
    bad = dict(GOOD, image_id="2", timed_caption=[{"utterance": "a", "start_time": 3, "end_time": 1}])
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(bad) + "\n")
    return path


def test_malformed_line_exit_2_one_line_no_traceback(tmp_path):
    path = _bad_file(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "trecs_eval", "data", "check", str(path)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"trecs-eval: error: {path}:2: field 'timed_caption[0]': "
                     "start_time 3.0 > end_time 1.0"]


def test_check_keep_going_lists_problems(tmp_path, capsys):
    assert main(["-q", "data", "check", "--keep-going", str(_bad_file(tmp_path))]) == 2
    out = capsys.readouterr()
    assert "narratives:     1" in out.out and "problems:       1" in out.out
    assert "1 malformed line(s)" in out.err


def test_check_real_trecs_labels(sequence_labels_dir, capsys):
    assert main(["data", "check", str(sequence_labels_dir)]) == 0
    out = capsys.readouterr().out
    # expected numbers straight from the files, independently of the reader
    coco_lines = len((sequence_labels_dir / "val_coco.ids.txt").read_bytes().splitlines())
    oi_lines = len((sequence_labels_dir / "val_oi.ids.txt").read_bytes().splitlines())
    labels = len(set((sequence_labels_dir / "val_coco.cleaned_tags.txt").read_text(encoding="utf-8").split()))
    assert f"lines:          {coco_lines:,}" in out and f"labels:         {labels}" in out
    assert f"lines:          {oi_lines:,}" in out


def test_download_unknown_name_suggests(tmp_path, capsys):
    assert main(["data", "download", "trecs-label", "--root", str(tmp_path)]) == 2
    assert "did you mean 'trecs-labels'" in capsys.readouterr().err


def test_toyworld_command_reads_back_through_the_readers(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["-q", "data", "toyworld", "--n", "4", "--seed", "3", "--out", str(out),
                 "--image-size", "64"]) == 0
    narratives = read_narratives(out / "narratives.jsonl").narratives
    labels = read_sequence_labels(out / "sequence_labels", "toyworld")
    assert [n.item_id for n in narratives] == list(labels.ids) and len(narratives) == 4
    assert all(labels.words[i] == tuple(n.words) for i, n in enumerate(narratives))
    assert {n.dataset_id for n in narratives} == {"toyworld"}
    evalset = load_toyworld(out)
    assert not evalset.missing and all(i.gold_tags for i in evalset)
    # the COCO-format annotations decode (pycocotools) to exactly the gold label maps
    annotations = CocoAnnotations(out / "annotations.json")
    assert len(annotations) == 4
    for item in evalset:
        maps = annotations.maps(int(item.narrative.image_id))
        np.testing.assert_array_equal(maps.labels, read_gold_segmentation(item))
    capsys.readouterr()
    assert main(["data", "check", str(out)]) == 0
    report = capsys.readouterr().out
    assert "narratives:     4" in report and "problems:       0" in report

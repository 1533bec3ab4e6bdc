"""Claiming a run directory: same config resumes, another config is refused unless forced, and
--force discards exactly what the change invalidates."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trecs_eval.config import DatasetSpec, RunConfig, SystemSpec, config_hash, load_config
from trecs_eval.errors import ConfigError, ResumeError
from trecs_eval.rundir import (
    MARKER_FILE,
    RunDirLockedError,
    adopt_run_dir,
    check_out_dir,
    claim_run_dir,
    record_output,
    release_run_dir,
)


def config(out: Path, **changes: object) -> RunConfig:
    base = RunConfig(name="r", out_dir=out, dataset=DatasetSpec(path=Path("toy")),
                     systems=(SystemSpec("noise"), SystemSpec("tr", "trecs", {"tags": "oracle"})))
    return dataclasses.replace(base, **changes)


def fake_outputs(run_dir: Path, system: str) -> list[Path]:
    files = [run_dir / "images" / system / "a_1.png", run_dir / "canvases" / system / "a_1.png",
             run_dir / "provenance" / f"{system}.jsonl", run_dir / "features" / f"{system}.npz"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    # what the runner and the feature writer record: the provenance line and the written-files log
    files[2].write_text(json.dumps({"item_id": "a_1", "system": system}) + "\n")
    record_output(files[3])
    return files


def test_new_and_same_config(tmp_path):
    cfg = config(tmp_path / "run")
    run_dir = claim_run_dir(cfg)
    assert (run_dir / "config.hash").read_text().strip() == config_hash(cfg)
    assert load_config(run_dir / "config.toml") == cfg
    files = fake_outputs(run_dir, "noise")
    assert claim_run_dir(cfg) == run_dir  # same config: resumed, nothing removed
    assert all(f.exists() for f in files)
    moved_device = dataclasses.replace(cfg, device="cpu")  # not hashed: still the same run
    assert claim_run_dir(moved_device) == run_dir


def test_changed_config_is_refused_with_the_differences(tmp_path):
    cfg = config(tmp_path / "run")
    fake_outputs(claim_run_dir(cfg), "noise")
    changed = config(tmp_path / "run", seed=3, systems=(SystemSpec("noise"),))
    with pytest.raises(ResumeError) as err:
        claim_run_dir(changed)
    message = str(err.value)
    assert "seed: 0 -> 3" in message and "systems: removed 'tr'" in message and "--force" in message


def test_force_discards_only_changed_systems(tmp_path):
    cfg = config(tmp_path / "run")
    run_dir = claim_run_dir(cfg)
    kept, changed_files = fake_outputs(run_dir, "noise"), fake_outputs(run_dir, "tr")
    predicted = SystemSpec("tr", "trecs", {"tags": "predicted"})
    new = config(tmp_path / "run", systems=(SystemSpec("noise"), predicted, SystemSpec("real")))
    claim_run_dir(new, force=True)
    assert all(f.exists() for f in kept)
    assert not any(f.exists() for f in changed_files)
    assert (run_dir / "config.hash").read_text().strip() == config_hash(new)


def test_force_with_another_dataset_discards_every_image(tmp_path):
    cfg = config(tmp_path / "run")
    run_dir = claim_run_dir(cfg)
    files = fake_outputs(run_dir, "noise") + fake_outputs(run_dir, "tr")
    claim_run_dir(config(tmp_path / "run", dataset=DatasetSpec(path=Path("other"))), force=True)
    assert not any(f.exists() for f in files)


def test_a_folder_with_images_but_no_hash_is_not_taken_even_with_force(tmp_path):
    photo = tmp_path / "run" / "images" / "holiday" / "photo.png"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"user photo")
    for force in (False, True):
        with pytest.raises(ResumeError, match="was not made by `trecs-eval run`"):
            claim_run_dir(config(tmp_path / "run"), force=force)
    assert photo.read_bytes() == b"user photo"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["images"]  # nothing written


@pytest.mark.parametrize("out_dir", ["/", "..", ".", "~"])
def test_root_home_cwd_and_its_parents_are_refused(out_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"out_dir = .*a run needs a folder of its own"):
        check_out_dir(Path(out_dir), "my.toml")


def test_a_path_under_a_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("user")
    with pytest.raises(ConfigError, match=r"my\.toml: out_dir = .*notes\.txt is a file, not a folder"):
        check_out_dir(tmp_path / "notes.txt" / "run", "my.toml")
    assert (tmp_path / "notes.txt").read_text() == "user"


def test_the_marker_is_written_first_and_a_marked_folder_is_reclaimed(tmp_path):
    run_dir = claim_run_dir(config(tmp_path / "run"))
    marker = json.loads((run_dir / MARKER_FILE).read_text())
    assert marker["format"] == "trecs-eval/run-dir"
    (run_dir / "notes.txt").write_text("a note the user left in the run")
    assert claim_run_dir(config(tmp_path / "run")) == run_dir  # ours: still claimable


def test_a_run_without_outputs_does_not_bind_its_folder(tmp_path):
    run_dir = claim_run_dir(config(tmp_path / "run"))  # e.g. the dataset path was wrong
    corrected = config(tmp_path / "run", seed=7)
    assert claim_run_dir(corrected) == run_dir
    assert (run_dir / "config.hash").read_text().strip() == config_hash(corrected)


def test_force_never_deletes_a_file_it_did_not_write(tmp_path):
    run_dir = claim_run_dir(config(tmp_path / "run"))
    ours = fake_outputs(run_dir, "tr")
    theirs = run_dir / "images" / "tr" / "holiday.png"
    theirs.write_bytes(b"user photo")
    (run_dir / "features" / "notes.npz").write_bytes(b"user file")
    claim_run_dir(config(tmp_path / "run", systems=(SystemSpec("noise"),)), force=True)
    assert not any(f.exists() for f in ours)
    assert theirs.read_bytes() == b"user photo"
    assert (run_dir / "features" / "notes.npz").read_bytes() == b"user file"


HOLD_LOCK = """
import sys, time
from pathlib import Path
from trecs_eval.rundir import lock_run_dir
lock_run_dir(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_run_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    run_dir = claim_run_dir(config(tmp_path / "run"))
    release_run_dir(run_dir)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE,
                              env=env, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        expected = f"in use by another trecs-eval run \\(pid {holder.pid} on"
        with pytest.raises(RunDirLockedError, match=expected):
            claim_run_dir(config(tmp_path / "run"))
    finally:
        holder.kill()
        holder.wait()
    assert claim_run_dir(config(tmp_path / "run")) == run_dir  # the kernel dropped the dead holder's lock
    release_run_dir(run_dir)


def test_a_folder_adopted_before_its_data_is_written_can_be_claimed(tmp_path):
    """The demo writes its data splits into out_dir before the run: it adopts the folder first."""
    run_dir = adopt_run_dir(tmp_path / "demo")
    (run_dir / "data" / "train").mkdir(parents=True)
    assert claim_run_dir(config(tmp_path / "demo")) == run_dir
    release_run_dir(run_dir)

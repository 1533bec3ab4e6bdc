"""Claiming a run directory: same config resumes, another config is refused unless forced, and
--force discards exactly what the change invalidates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trecs_eval.config import DatasetSpec, RunConfig, SystemSpec, config_hash, load_config
from trecs_eval.errors import ResumeError
from trecs_eval.rundir import claim_run_dir


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
    claim_run_dir(cfg)
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


def test_a_folder_with_images_but_no_hash_is_not_taken(tmp_path):
    (tmp_path / "run" / "images").mkdir(parents=True)
    with pytest.raises(ResumeError, match=r"no config\.hash"):
        claim_run_dir(config(tmp_path / "run"))
    claim_run_dir(config(tmp_path / "run"), force=True)
    assert not (tmp_path / "run" / "images").exists()

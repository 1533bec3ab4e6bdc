"""A run folder's links and tampered bookkeeping never let a command write, truncate or delete a byte
outside the folder: a link out is refused with one line naming it (nothing deleted first), and the
lock, provenance and written-files logs are never opened through a link, a FIFO or a hard link."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from baselines.noise import NoiseGenerator
from tests.harness_fixtures import make_items
from trecs_eval.config import DatasetSpec, RunConfig, SystemSpec
from trecs_eval.confine import OutsideRunDirError, check_inside
from trecs_eval.errors import ResumeError, WriteError
from trecs_eval.generation.protocol import GeneratorContext
from trecs_eval.generation.runner import generate_system, read_provenance
from trecs_eval.rundir import (
    LOCK_FILE,
    WRITTEN_FILE,
    adopt_run_dir,
    claim_run_dir,
    lock_run_dir,
    record_output,
    recorded_outputs,
    release_run_dir,
)

USER_BYTES = b"the user's own bytes"


def config(out: Path, **changes: object) -> RunConfig:
    base = RunConfig(name="r", out_dir=out, dataset=DatasetSpec(path=Path("toy")),
                     systems=(SystemSpec("noise"), SystemSpec("tr", "trecs", {"tags": "oracle"})))
    return dataclasses.replace(base, **changes)


def another_dataset(out: Path) -> RunConfig:
    return config(out, dataset=DatasetSpec(path=Path("other")))  # every output is invalidated


def user_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "user"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_bytes(USER_BYTES)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def claimed_with_outputs(tmp_path: Path) -> Path:
    run_dir = claim_run_dir(config(tmp_path / "run"))
    features = run_dir / "features" / "noise.npz"
    features.parent.mkdir()
    features.write_bytes(b"ours")
    record_output(features)
    (run_dir / "provenance").mkdir()
    (run_dir / "provenance" / "tr.jsonl").write_text(json.dumps({"item_id": "a_1"}) + "\n")
    release_run_dir(run_dir)
    return run_dir


def noise(size: int = 16) -> NoiseGenerator:
    return NoiseGenerator({}, GeneratorContext(image_size=size))


# ---------------------------------------------------------------- --force through links


def test_force_does_not_delete_through_a_link_listed_in_the_written_log(tmp_path):
    run_dir = claimed_with_outputs(tmp_path)
    user = user_folder(tmp_path, "victim.txt")
    (run_dir / "shared").symlink_to(user, target_is_directory=True)
    with open(run_dir / WRITTEN_FILE, "a") as fh:
        fh.write("shared/victim.txt\n")
    with pytest.raises(OutsideRunDirError, match=r"run/shared leads to .*user, outside the run folder"):
        claim_run_dir(another_dataset(run_dir), force=True)
    release_run_dir(run_dir)
    assert snapshot(user) == {"victim.txt": USER_BYTES}
    assert (run_dir / "features" / "noise.npz").exists()  # refused before the first deletion


def test_force_does_not_delete_through_a_linked_system_folder(tmp_path):
    run_dir = claimed_with_outputs(tmp_path)
    photos = user_folder(tmp_path, "holiday.png")
    (run_dir / "images").mkdir()
    (run_dir / "images" / "noise").symlink_to(photos, target_is_directory=True)
    (run_dir / "provenance" / "noise.jsonl").write_text(json.dumps({"item_id": "holiday"}) + "\n")
    with pytest.raises(OutsideRunDirError, match=r"images/noise leads to .*user"):
        claim_run_dir(another_dataset(run_dir), force=True)
    release_run_dir(run_dir)
    assert snapshot(photos) == {"holiday.png": USER_BYTES}


def test_generation_never_writes_into_a_linked_system_folder(tmp_path):
    """The runner checks by itself: a Ray worker writes into a run folder its process never claimed."""
    run_dir = tmp_path / "run"
    photos = user_folder(tmp_path, "holiday.png", ".draft.tmp")  # named like our temp files
    (run_dir / "images").mkdir(parents=True)
    (run_dir / "images" / "noise").symlink_to(photos, target_is_directory=True)
    with pytest.raises(OutsideRunDirError, match=r"images/noise leads to"):
        generate_system(run_dir, "noise", noise(), make_items(2), seed=0, progress=False)
    assert snapshot(photos) == {".draft.tmp": USER_BYTES, "holiday.png": USER_BYTES}
    assert not (run_dir / "provenance" / "noise.jsonl").exists()


def test_a_link_made_between_two_items_is_refused_before_the_next_write(tmp_path):
    """The folder is resolved again for every item, not only when the system starts."""
    run_dir, photos = tmp_path / "run", user_folder(tmp_path)
    (run_dir / "canvases").mkdir(parents=True)

    class Relinking(NoiseGenerator):
        def generate(self, items, seed):  # type: ignore[no-untyped-def]
            folder = run_dir / "canvases" / "noise"
            if folder.is_dir() and not folder.is_symlink():
                folder.rmdir()
                folder.symlink_to(photos, target_is_directory=True)
            out = super().generate(items, seed)
            return [dataclasses.replace(g, canvas=g.image[..., 0].copy()) for g in out]

    with pytest.raises(OutsideRunDirError, match=r"canvases/noise leads to"):
        generate_system(run_dir, "noise", Relinking({}, GeneratorContext(image_size=8)), make_items(2),
                        seed=0, progress=False)
    assert snapshot(photos) == {}


def test_a_linked_folder_inside_the_run_folder_is_allowed(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "elsewhere").mkdir(parents=True)
    (run_dir / "images").symlink_to(run_dir / "elsewhere", target_is_directory=True)
    out = generate_system(run_dir, "noise", noise(), make_items(2), seed=0, progress=False)
    assert out.generated == 2 and len(list((run_dir / "elsewhere" / "noise").glob("*.png"))) == 2
    assert check_inside(run_dir, run_dir / "images" / "noise" / "x.png")


def test_the_report_command_does_not_write_through_a_linked_report_folder(tmp_path, capsys):
    from tests.report_fixtures import make_run_dir
    from trecs_eval.cli import main

    run_dir = make_run_dir(tmp_path / "run")
    user = user_folder(tmp_path, "report.md")
    (run_dir / "report").symlink_to(user, target_is_directory=True)
    assert main(["-q", "report", str(run_dir), "--format", "md"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "run/report leads to" in err
    assert snapshot(user) == {"report.md": USER_BYTES}


# ---------------------------------------------------------------- bookkeeping files


def _plant(path: Path, kind: str, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "hardlink":
        os.link(target, path)
    else:
        os.mkfifo(path)


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
@pytest.mark.parametrize("bookkeeping", ["lock", "provenance", "written"])
def test_bookkeeping_files_are_never_opened_through_a_link_or_a_fifo(tmp_path, bookkeeping, kind):
    run_dir = adopt_run_dir(tmp_path / "run")
    release_run_dir(run_dir)
    victim = user_folder(tmp_path, "victim.txt") / "victim.txt"
    path = {"lock": run_dir / LOCK_FILE, "provenance": run_dir / "provenance" / "noise.jsonl",
            "written": run_dir / WRITTEN_FILE}[bookkeeping]
    _plant(path, kind, victim)
    expected = {"symlink": "is a symbolic link", "hardlink": "has 2 hard links",
                "fifo": "is not a regular file"}[kind]
    with pytest.raises(WriteError, match=expected) as caught:
        if bookkeeping == "lock":
            lock_run_dir(run_dir)
        elif bookkeeping == "provenance":
            generate_system(run_dir, "noise", noise(8), make_items(1), seed=0, progress=False)
        else:
            features = run_dir / "features" / "noise.npz"
            features.parent.mkdir()
            features.write_bytes(b"ours")
            record_output(features)
    release_run_dir(run_dir)
    assert str(path) in str(caught.value)
    assert victim.read_bytes() == USER_BYTES


def test_a_provenance_line_that_is_not_an_object_is_skipped(tmp_path):
    (tmp_path / "provenance").mkdir()
    lines = ['[1, 2]', '"x"', '{"item_id": "a_1"}', "[" * 100_000, "1" * 5000]
    (tmp_path / "provenance" / "s.jsonl").write_text("\n".join(lines) + "\n")
    assert read_provenance(tmp_path, "s") == [{"item_id": "a_1"}]


# ---------------------------------------------------------------- tampered records and --force


def test_force_ignores_a_provenance_item_id_that_leaves_the_system_folder(tmp_path):
    run_dir = claimed_with_outputs(tmp_path)
    keep = run_dir / "keep.png"  # inside the run folder, but no system's output
    keep.write_bytes(USER_BYTES)
    (run_dir / "images" / "tr").mkdir(parents=True)
    (run_dir / "provenance" / "tr.jsonl").write_text(
        "".join(json.dumps({"item_id": i}) + "\n" for i in ("../../keep", "./../../keep")))
    claim_run_dir(another_dataset(run_dir), force=True)
    release_run_dir(run_dir)
    assert keep.read_bytes() == USER_BYTES


def test_force_ignores_written_log_lines_that_point_elsewhere(tmp_path):
    run_dir = claimed_with_outputs(tmp_path)
    sibling = user_folder(tmp_path, "sibling.txt") / "sibling.txt"
    (run_dir / "notes.txt").write_bytes(USER_BYTES)
    tampered = ["../user/sibling.txt", "features/../../user/sibling.txt", "features/..", f"{sibling}",
                "./notes.txt", "features//../notes.txt", ""]
    with open(run_dir / WRITTEN_FILE, "a") as fh:
        fh.write("".join(f"{line}\n" for line in tampered))
    assert recorded_outputs(run_dir) == {"features/noise.npz"}
    claim_run_dir(another_dataset(run_dir), force=True)
    release_run_dir(run_dir)
    assert sibling.read_bytes() == USER_BYTES and (run_dir / "notes.txt").read_bytes() == USER_BYTES
    assert not (run_dir / "features" / "noise.npz").exists()  # what the run did write is discarded


@pytest.mark.parametrize("bookkeeping", ["config.hash", "config.toml"])
def test_a_folder_needs_both_hash_and_config_to_be_adopted(tmp_path, bookkeeping):
    """A run folder without the marker is adopted only with config.hash *and* a readable config.toml."""
    run_dir = claim_run_dir(config(tmp_path / "made"))
    release_run_dir(run_dir)
    user = tmp_path / "user-run"
    user.mkdir()
    (user / bookkeeping).write_bytes((run_dir / bookkeeping).read_bytes())
    (user / "holiday.png").write_bytes(USER_BYTES)
    for force in (False, True):
        with pytest.raises(ResumeError, match="was not made by `trecs-eval run`"):
            claim_run_dir(config(user), force=force)
    assert sorted(p.name for p in user.iterdir()) == sorted([bookkeeping, "holiday.png"])


def test_ray_provenance_parts_are_never_read_or_deleted_through_links(tmp_path):
    from trecs_eval.execution.ray_generation import merge_provenance_parts, provenance_parts_dir

    run_dir = tmp_path / "run"
    parts = provenance_parts_dir(run_dir, "noise")
    parts.parent.mkdir(parents=True)
    user = user_folder(tmp_path, "a.jsonl")
    parts.symlink_to(user, target_is_directory=True)  # the parts folder leads out
    with pytest.raises(OutsideRunDirError, match=r"\.parts/noise leads to"):
        merge_provenance_parts(run_dir, "noise")
    assert snapshot(user) == {"a.jsonl": USER_BYTES}
    parts.unlink()
    parts.mkdir()
    (parts / "1.jsonl").symlink_to(user / "a.jsonl")  # one part file is a link
    with pytest.raises(WriteError, match="is a symbolic link"):
        merge_provenance_parts(run_dir, "noise")
    assert snapshot(user) == {"a.jsonl": USER_BYTES}


def test_a_file_where_a_system_folder_belongs_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "images").mkdir(parents=True)
    (run_dir / "images" / "noise").write_bytes(USER_BYTES)
    with pytest.raises(WriteError, match=r"images/noise is a file, not a folder"):
        generate_system(run_dir, "noise", noise(8), make_items(1), seed=0, progress=False)
    assert (run_dir / "images" / "noise").read_bytes() == USER_BYTES


def test_a_dangling_provenance_link_is_one_line(tmp_path):
    run_dir = claimed_with_outputs(tmp_path)
    (run_dir / "provenance" / "noise.jsonl").symlink_to(tmp_path / "nowhere")
    with pytest.raises(WriteError, match=r"provenance/noise.jsonl is a symbolic link"):
        claim_run_dir(another_dataset(run_dir), force=True)
    release_run_dir(run_dir)
    assert not (tmp_path / "nowhere").exists()

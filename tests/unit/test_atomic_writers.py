"""Every writer of the package goes through atomic_write: a disk that fills up mid-write (ENOSPC
injected into the temp file's ``write``) leaves the old file byte for byte and no temp file, and
the failure is a one-line WriteError naming the file."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trecs_eval.errors import WriteError

OLD_BYTES = b"the user's previous file\n"
BYTES_BEFORE_FULL = 10  # the disk "fills up" after this many bytes: a truncated file would show


class _FullDisk:
    """A file object whose writes fail with ENOSPC once ``BYTES_BEFORE_FULL`` bytes were written."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._written = 0

    def write(self, data: Any) -> int:
        if self._written + len(data) > BYTES_BEFORE_FULL:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._written += len(data)
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> Any:
        return iter(self._handle)


def _fill_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: _FullDisk(real_fdopen(*a, **k)))


# ---------------------------------------------------------------- one call per writer


def _bank(target: Path) -> None:
    from reference_pipeline.bank import INDEX_NAME, build_bank
    from tests.trecs_scene import write_bank_dir

    assert target.name == INDEX_NAME
    src = write_bank_dir(target.parent.parent / "train", [[("sky-other", (0, 0, 64, 32))]])
    bank = build_bank(src / "annotations.json", src / "images")
    bank.save(target.parent)


def _clip_weights(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip
    import torch

    from trecs_eval.features import clip_weights

    # the write path is under test, not the model: a tiny module stands in for ViT-B-32
    monkeypatch.setattr(open_clip, "create_model", lambda *a, **k: torch.nn.Linear(64, 64))
    monkeypatch.setattr(clip_weights, "calibrate_clip", lambda model, seed: None)
    clip_weights.make_calibrated_clip_checkpoint(target, "ViT-B-32", 0)


def _calibrated_inception(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from trecs_eval.features import calibration

    # the write path is under test, not the calibration: a tiny module and no forward passes
    monkeypatch.setattr(calibration, "inception_skeleton", lambda: torch.nn.Linear(64, 64))
    monkeypatch.setattr(calibration, "CALIBRATION_BATCHES", 0)
    for step in ("_he_init", "_fit_batchnorm", "_calibrate_classifier"):
        monkeypatch.setattr(calibration, step, lambda *a: None)
    calibration.make_calibrated_inception_weights(target, 0)


def _spade(target: Path) -> None:
    from reference_pipeline.synthesize.spade import SpadeConfig, SPADEGenerator, save_checkpoint

    save_checkpoint(SPADEGenerator(SpadeConfig(ngf=2, z_dim=8, nhidden=4, crop_size=64)), target)


def _sequence_labels(target: Path) -> None:
    from trecs_eval.data.sequence_labels import write_sequence_labels

    write_sequence_labels(target.parent, "val", ["item-00000001"], [["sky"] * 20], [["sky-other"] * 20])


def _tagger(target: Path) -> None:
    from reference_pipeline.tag.api import save_tagger
    from reference_pipeline.tag.baselines import train_baseline

    save_tagger(train_baseline("majority", [["sky"]], [["sky-other"]]), target)


def _fid_statistics(target: Path) -> None:
    from trecs_eval.features.identity import ExtractorIdentity
    from trecs_eval.metrics.fid import features_to_statistics, save_statistics

    stats = features_to_statistics(np.random.default_rng(0).normal(size=(8, 4)))
    save_statistics(target, stats, ExtractorIdentity("x", "0" * 64, ("2048",), "tf1"))


def _report_command(target: Path, run_dir: Path) -> None:
    from trecs_eval.cli import main

    assert main(["-q", "report", str(run_dir), "--format", "md", "--out", str(target)]) == 2


def _compare_command(target: Path, run_dir: Path) -> None:
    from trecs_eval.cli import main

    code = main(["-q", "compare", str(run_dir), str(run_dir), "--format", "json", "--n-resamples", "5",
                 "--out", str(target)])
    assert code == 2


def _build_report(target: Path, run_dir: Path) -> None:
    from reports import build_report

    build_report(run_dir, formats=("md",), out_dir=target.parent)


def _html(target: Path, run_dir: Path) -> None:
    from reports.html import write_html

    write_html(run_dir, target, gallery_size=1)


def _config(target: Path) -> None:
    from trecs_eval.config import RunConfig, save_config

    save_config(RunConfig(), target)


def _narratives(target: Path) -> None:
    from tests.harness_fixtures import narrative
    from trecs_eval.data.localized_narratives import write_narratives_jsonl

    write_narratives_jsonl(target, [narrative("1", "a dog on the grass under the blue sky")])


def _label_map(target: Path) -> None:
    from trecs_eval.data.coco_stuff import write_label_map

    write_label_map(target, np.random.default_rng(0).integers(0, 180, (16, 16)))


WRITERS: dict[str, tuple[str, Callable[..., None]]] = {
    "reference_pipeline/bank.py": ("bank/bank.json", _bank),
    "features/clip_weights.py": ("clip.pt", _clip_weights),
    "features/calibration.py": ("inception.pt", _calibrated_inception),
    "reference_pipeline/synthesize/spade.py": ("spade.pt", _spade),
    "data/sequence_labels.py": ("labels/val.ids.txt", _sequence_labels),
    "reference_pipeline/tag/api.py": ("tagger.pt", _tagger),
    "metrics/fid.py": ("reference_stats.npz", _fid_statistics),
    "commands/report.py": ("out/summary.md", _report_command),
    "commands/compare.py": ("out/compare.json", _compare_command),
    "reports/__init__.py": ("report/summary.md", _build_report),
    "reports/html.py": ("report/report.html", _html),
    "config.py (save_config)": ("config.toml", _config),
    "data/localized_narratives.py": ("narratives.jsonl", _narratives),
    "data/coco_stuff.py": ("label.png", _label_map),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.report_fixtures import make_run_dir

    return make_run_dir(tmp_path_factory.mktemp("run") / "run", n_items=12, n_reference=16)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_full_disk_keeps_the_old_file_and_leaves_no_temp(writer: str, tmp_path: Path, run_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    relative, call = WRITERS[writer]
    target = tmp_path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(OLD_BYTES)
    before = sorted(p.name for p in target.parent.iterdir())
    kwargs: dict[str, Any] = {}
    if "run_dir" in call.__code__.co_varnames[:call.__code__.co_argcount]:
        kwargs["run_dir"] = run_dir
    if "monkeypatch" in call.__code__.co_varnames[:call.__code__.co_argcount]:
        kwargs["monkeypatch"] = monkeypatch
    _fill_disk(monkeypatch)
    if call in (_report_command, _compare_command):  # the CLI turns the WriteError into one line
        call(target, **kwargs)
        err = capsys.readouterr().err.strip().splitlines()
        assert err[0].startswith("trecs-eval: error: cannot write") and str(target) in err[0]
        assert "Traceback" not in "\n".join(err)
    else:
        with pytest.raises(WriteError, match="No space left on device") as raised:
            call(target, **kwargs)
        assert str(target) in str(raised.value)
    monkeypatch.undo()
    assert target.read_bytes() == OLD_BYTES
    assert sorted(p.name for p in target.parent.iterdir()) == before  # no temp file left


def test_tagger_checkpoints_are_byte_identical(tmp_path: Path) -> None:
    """torch.save is handed a buffer: the archive is not named after a random temp file."""
    from reference_pipeline.tag.api import save_tagger
    from reference_pipeline.tag.baselines import train_baseline

    tagger = train_baseline("majority", [["sky", "dog"]], [["sky-other", "dog"]])
    first, second = save_tagger(tagger, tmp_path / "a.pt"), save_tagger(tagger, tmp_path / "b.pt")
    assert first.read_bytes() == second.read_bytes()


def test_a_file_where_a_folder_should_be_names_that_file(tmp_path: Path) -> None:
    from trecs_eval.atomic import write_text

    (tmp_path / "blocker").write_text("user data")
    with pytest.raises(WriteError, match="blocker is a file, not a folder"):
        write_text(tmp_path / "blocker" / "sub" / "out.txt", "x")
    assert (tmp_path / "blocker").read_text() == "user data"

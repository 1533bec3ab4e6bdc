"""``trecs-eval stats make`` and ``trecs-eval metrics``: results, identity checks, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.weights import calibrated_inception_weights_file, write_image_set
from trecs_eval.cli import main


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return calibrated_inception_weights_file(tmp_path_factory)  # made once per process


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli-images")
    write_image_set(root / "gen", 10, seed=31, px=32)
    write_image_set(root / "ref", 10, seed=32, px=32, darken=0.5)
    return root / "gen", root / "ref"


def test_stats_make_then_metrics_against_the_file(folders: tuple[Path, Path], inception_weights: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    gen, ref = folders
    stats = tmp_path / "ref.npz"
    weights = ["--inception-weights", str(inception_weights), "--device", "cpu", "-q"]
    assert main(["stats", "make", "--images", str(ref), "--out", str(stats), *weights]) == 0
    out = tmp_path / "results.json"
    code = main(["metrics", "--generated", str(gen), "--reference", str(stats), "--metrics", "fid,is",
                 "--n-bootstrap", "5", "--out", str(out), *weights])
    assert code == 0
    data = json.loads(out.read_text())
    by_name = {m["name"]: m for m in data["metrics"]}
    assert set(by_name) == {"fid", "is"}
    assert by_name["fid"]["value"] > 0 and by_name["fid"]["ci_low"] <= by_name["fid"]["ci_high"]
    assert by_name["fid"]["extractor"]["weights_sha256"] == data["extractors"]["inception"]["weights_sha256"]
    assert by_name["is"]["params"]["images"]["formats"] == {"PNG": 10}
    assert (data["cache"]["hits"], data["cache"]["misses"]) == (0, 10)  # stats file: ref not re-read
    captured = capsys.readouterr()
    assert "feature cache:" in captured.err
    # against the folder itself: the same FID as against its statistics (features cached now)
    code = main(["metrics", "--generated", str(gen), "--reference", str(ref), "--metrics", "fid",
                 "--n-bootstrap", "0", "--out", str(out), *weights])
    assert code == 0
    again = json.loads(out.read_text())["metrics"][0]
    assert again["value"] == pytest.approx(by_name["fid"]["value"], rel=1e-6)
    assert again["ci_low"] is None  # no bootstrap asked: no CI, never a made-up one


def test_mismatched_statistics_and_bad_input_exit_2(folders: tuple[Path, Path], inception_weights: Path,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    gen, ref = folders
    stats = tmp_path / "ref.npz"
    weights = ["--inception-weights", str(inception_weights), "--device", "cpu", "-q"]
    assert main(["stats", "make", "--images", str(ref), "--out", str(stats), *weights]) == 0
    capsys.readouterr()
    cases = [
        (["--reference", str(stats), "--metrics", "fid", "--preprocessing", "clean"], "different extractor"),
        (["--reference", str(ref), "--metrics", "fdi"], "did you mean 'fid'"),
        (["--reference", str(ref), "--metrics", "kid"], "at least 50"),
        (["--reference", str(stats), "--metrics", "kid"], "not saved statistics"),
        (["--metrics", "clip_score"], "--narratives"),
    ]
    for extra, message in cases:
        assert main(["metrics", "--generated", str(gen), *extra, *weights]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)
    assert main(["metrics", "--generated", str(tmp_path / "none"), "--reference", str(ref), *weights]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_no_weights_offline_exit_2_names_the_flags(folders: tuple[Path, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from trecs_eval.features import weights as weights_module

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TRECS_EVAL_OFFLINE", "1")
    monkeypatch.setattr(weights_module, "packaged_weights_path", lambda: None)  # no weights extra
    gen, ref = folders
    assert main(["metrics", "--generated", str(gen), "--reference", str(ref), "--metrics", "fid"]) == 2
    err = capsys.readouterr().err
    assert "--inception-weights PATH" in err and "--uncalibrated-weights" in err

"""``trecs-eval metrics --metrics fid,fid_inf,is``: every interval contains its estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.weights import calibrated_inception_weights_file, write_image_set
from trecs_eval.cli import main


def test_metrics_cli_reports_fid_inf_and_intervals_that_contain_their_values(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    weights = calibrated_inception_weights_file(tmp_path_factory)
    root = tmp_path_factory.mktemp("fid-inf-images")
    write_image_set(root / "gen", 20, seed=41, px=32)
    write_image_set(root / "ref", 20, seed=42, px=32, darken=0.5)
    out = tmp_path / "results.json"
    code = main(["metrics", "--generated", str(root / "gen"), "--reference", str(root / "ref"),
                 "--metrics", "fid,fid_inf,is", "--n-bootstrap", "10", "--out", str(out),
                 "--inception-weights", str(weights), "--device", "cpu", "-q"])
    assert code == 0
    by_name = {m["name"]: m for m in json.loads(out.read_text())["metrics"]}
    assert set(by_name) == {"fid", "fid_inf", "is"}  # (KID needs >= 50 images: unit-tested)
    for name, m in by_name.items():
        assert m["ci_low"] <= m["value"] <= m["ci_high"], name
        assert m["params"]["interval_covers"], name
    # 20 images in 2048 dimensions: FID is not linear in 1/n there, and FID_inf says so.
    assert any("not linear in 1/n" in w for w in by_name["fid_inf"]["warnings"])
    assert by_name["fid_inf"]["params"]["sizes"][-1] == 20

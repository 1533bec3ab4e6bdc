"""atomic_write: the target appears whole or not at all, and a failure leaves no temp file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from trecs_eval.atomic import atomic_write


def test_success_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    with atomic_write(target, "w", encoding="utf-8") as fh:
        json.dump({"a": 1}, fh)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_write(target, "w", encoding="utf-8") as fh:
        json.dump({"fid": math.nan}, fh, allow_nan=False)  # NaN is refused mid-write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]

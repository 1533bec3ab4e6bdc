"""Calibrated random weights are a pure function of the seed, down to the file's sha256.

Every result records the weights' sha256 and `compare` refuses runs whose identities differ, so
two machines (or two cache directories) generating seed 0 must produce the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from trecs_eval.features.calibration import make_calibrated_inception_weights
from trecs_eval.features.identity import sha256_file


def test_same_seed_same_file_bytes_wherever_written(tmp_path: Path) -> None:
    first = make_calibrated_inception_weights(tmp_path / "a" / "one.pth", seed=0)
    second = make_calibrated_inception_weights(tmp_path / "b" / "two.pth", seed=0)
    assert first == second == sha256_file(str(tmp_path / "b" / "two.pth"))
    assert make_calibrated_inception_weights(tmp_path / "c.pth", seed=1) != first

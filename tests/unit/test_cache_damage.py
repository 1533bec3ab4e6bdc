"""A damaged feature cache never stops a run with a traceback: a garbage row is quarantined and
recomputed; a file SQLite cannot use is one error naming it and saying that deleting it is safe."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from trecs_eval.errors import TrecsEvalError
from trecs_eval.features.cache import FeatureCache

ROW = {"pool": np.arange(6, dtype=np.float32).reshape(2, 3)}


@pytest.mark.parametrize("garbage", [b"not json\n\x00\x01", b'{"pool": [[2, 3], 0, 9999]}\n', b"{}}{\n",
                                     "a text value", b'{"pool": "x"}\n'])
def test_a_garbage_row_is_quarantined_and_recomputed(garbage, tmp_path: Path, caplog) -> None:
    path = tmp_path / "features.sqlite"
    with FeatureCache(path) as cache:
        cache.put_many("id", {"good": ROW, "bad": ROW})
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE features SET arrays=? WHERE content='bad'", (garbage,))
    with FeatureCache(path) as cache, caplog.at_level(logging.WARNING):
        found = cache.get_many("id", ["good", "bad"])
        assert set(found) == {"good"}  # the bad row is a miss: the caller recomputes it
        np.testing.assert_array_equal(found["good"]["pool"], ROW["pool"])
        assert str(path) in caplog.text and "quarantined" in caplog.text
        cache.put_many("id", {"bad": ROW})  # recomputed and stored again
        assert set(cache.get_many("id", ["good", "bad"])) == {"good", "bad"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 1


def test_a_file_with_corrupt_pages_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "features.sqlite"
    with FeatureCache(path) as cache:
        cache.put_many("id", {f"k{i}": {"pool": np.zeros(512, np.float32)} for i in range(50)})
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # page 2 onwards: garbage
    path.write_bytes(bytes(data))
    expected = f"feature cache {path} cannot be used .*deleting it is safe"
    with pytest.raises(TrecsEvalError, match=expected), FeatureCache(path) as cache:
        cache.get_many("id", [f"k{i}" for i in range(50)])


def test_not_a_database_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "features.sqlite"
    path.write_bytes(b"this is a user's text file, not SQLite" * 200)
    with pytest.raises(TrecsEvalError, match=f"feature cache {path} cannot be used .*deleting it is safe"):
        FeatureCache(path)


def test_a_cache_path_under_a_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(TrecsEvalError, match=r"cache is a file, not a folder"):
        FeatureCache(tmp_path / "cache" / "features.sqlite")
    with pytest.raises(TrecsEvalError, match=r"is a directory, not a cache file"):
        FeatureCache(tmp_path)

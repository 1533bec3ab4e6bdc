"""Feature cache: round trip, content keys, location, two writers at once, SIGKILL mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from trecs_eval.features.cache import (
    FeatureCache,
    content_key_for_file,
    content_key_for_pixels,
    content_key_for_text,
    default_cache_dir,
)

ROW_DIM = 64

# A writer process: writes rows whose values are a function of their key, forever (until killed),
# in small transactions so a kill is likely to land inside one.
_WRITER = """
import sys, numpy as np
from trecs_eval.features.cache import FeatureCache
cache = FeatureCache(sys.argv[1]); tag = sys.argv[2]; limit = int(sys.argv[3])
i = 0
while limit < 0 or i < limit:
    batch = {f"{tag}-{j}": {"pool": np.full(ROW_DIM, j, np.float32),
                            "logits": np.arange(3, dtype=np.float32) + j}
             for j in range(i, i + 20)}
    cache.put_many("ident", batch)
    i += 20
    if i == 20:
        print("started", flush=True)
""".replace("ROW_DIM", str(ROW_DIM))


def _check_rows(rows: dict[str, dict[str, np.ndarray]]) -> None:
    for key, arrays in rows.items():
        j = int(key.rsplit("-", 1)[1])
        np.testing.assert_array_equal(arrays["pool"], np.full(ROW_DIM, j, np.float32))
        np.testing.assert_array_equal(arrays["logits"], np.arange(3, dtype=np.float32) + j)


def test_round_trip_and_counters(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c.sqlite")
    arrays = {"pool": np.random.default_rng(0).standard_normal((2048,)).astype(np.float32),
              "logits": np.linspace(-1, 1, 1008, dtype=np.float32)}
    cache.put_many("id-a", {"k1": arrays})
    got = cache.get_many("id-a", ["k1", "k2"])
    assert set(got) == {"k1"}
    for name in arrays:
        np.testing.assert_array_equal(got["k1"][name], arrays[name])
    assert cache.get_many("id-b", ["k1"]) == {}  # another extractor identity misses
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 2, 1)


def test_many_keys_beyond_sqlite_parameter_limit(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c.sqlite")
    entries = {f"k{i}": {"v": np.array([i], np.float32)} for i in range(2500)}
    cache.put_many("id", entries)
    got = cache.get_many("id", list(entries))
    assert len(got) == 2500 and float(got["k2499"]["v"][0]) == 2499.0


def test_content_keys_follow_content_not_names(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.png", tmp_path / "renamed.png", tmp_path / "c.png"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    c.write_bytes(b"other bytes")
    assert content_key_for_file(a) == content_key_for_file(b) != content_key_for_file(c)
    px = np.zeros((4, 4, 3), np.uint8)
    assert content_key_for_pixels(px) != content_key_for_pixels(px.reshape(4, 12))
    assert content_key_for_text("a dog") != content_key_for_text("a cat")


def test_location_env_and_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRECS_EVAL_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("TRECS_EVAL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "trecs-eval"
    assert FeatureCache().path.parent == tmp_path / "xdg" / "trecs-eval"


def test_two_processes_write_and_read_at_once(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    FeatureCache(db).close()  # create the schema before both writers start
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db), tag, "400"],
                              stdout=subprocess.DEVNULL) for tag in ("p", "q")]
    reader = FeatureCache(db)
    while any(p.poll() is None for p in procs):  # read while they write
        _check_rows(reader.get_many("ident", [f"p-{j}" for j in range(400)]))
    assert [p.returncode for p in procs] == [0, 0]
    rows = reader.get_many("ident", [f"{t}-{j}" for t in "pq" for j in range(400)])
    assert len(rows) == 800
    _check_rows(rows)


def test_sigkill_during_writes_leaves_no_corrupt_row(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), "k", "-1"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"started"
    time.sleep(0.3)  # let it be in the middle of some transaction
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = FeatureCache(db)
    assert cache._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = cache.count("ident")
    assert n >= 20 and n % 20 == 0  # whole transactions only
    rows = cache.get_many("ident", [f"k-{j}" for j in range(n + 40)])
    assert len(rows) == n
    _check_rows(rows)

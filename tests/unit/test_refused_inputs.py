"""Flags and inputs refused with one line before any work: metric parameters out of range, damaged
reference statistics, an unreachable Ray address (bounded, and stoppable by SIGTERM)."""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from trecs_eval.errors import ConfigError, InputError
from trecs_eval.execution import ray_cluster
from trecs_eval.features.identity import ExtractorIdentity
from trecs_eval.metrics.fid import GaussianStatistics, load_statistics, save_statistics
from trecs_eval.metrics.inception_score import logits_to_inception_score
from trecs_eval.metrics.registry import checked_params

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("metric", "key", "value", "allowed"), [
    ("is", "splits", 0, ">= 1"),
    ("is", "splits", -3, ">= 1"),
    ("fid", "n_resamples", -5, ">= 0"),
    ("precision", "n_resamples", -5, ">= 0"),
    ("kid", "n_subsets", 0, ">= 1"),
    ("precision", "nearest_k", 0, ">= 1"),
    ("r_precision", "n_negatives", 0, ">= 1"),
    ("fid_inf", "n_points", 2, ">= 3"),
    ("fid_inf", "min_fraction", 1.0, "in (0, 1)"),
    ("clip_score", "alpha", 0.0, "in (0, 1)"),
    ("fid", "alpha", math.nan, "in (0, 1)"),
])
def test_out_of_range_parameters_are_refused_with_the_allowed_range(metric, key, value, allowed):
    with pytest.raises(ConfigError, match=rf"{key} = .* out of range; allowed: {re.escape(allowed)}"):
        checked_params(metric, {key: value})


def test_edge_values_inside_the_range_are_accepted():
    assert checked_params("fid", {"n_resamples": 0})["n_resamples"] == 0  # 0: no interval
    assert checked_params("is", {"splits": 1})["splits"] == 1
    assert checked_params("fid_inf", {"n_points": 3, "min_fraction": 0.5})["n_points"] == 3


def test_is_with_zero_splits_does_not_contradict_itself():
    logits = np.zeros((8, 5))
    with pytest.raises(Exception, match=r"IS splits must be >= 1, got 0"):
        logits_to_inception_score(logits, seed=0, splits=0)


def test_cli_refuses_zero_is_splits_with_exit_2(tmp_path, capsys):
    from trecs_eval.cli import main

    code = main(["-q", "metrics", "--generated", str(tmp_path), "--metrics", "is",
                 "--param", "is.splits=0"])
    err = capsys.readouterr().err
    assert code == 2 and "allowed: >= 1" in err and "Traceback" not in err


def _identity() -> ExtractorIdentity:
    return ExtractorIdentity(name="inception-v3-compat", weights_sha256="ab" * 32,
                             layers=("2048", "logits_unbiased"), preprocessing="tf1")


def _stats_file(path: Path, mu: np.ndarray, sigma: np.ndarray, n: int = 10) -> Path:
    save_statistics(path, GaussianStatistics(mu, sigma, n), _identity())
    return path


@pytest.mark.parametrize(("case", "field", "says"), [
    ("nan_sigma", "sigma", "NaN or inf"),
    ("nan_mu", "mu", "NaN or inf"),
    ("not_psd", "sigma", "not a covariance"),
    ("asymmetric", "sigma", "not symmetric"),
    ("one_sample", "n", "at least 2"),
])
def test_damaged_reference_statistics_name_the_file_and_field(tmp_path, case, field, says):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4))
    mu, sigma, n = x.mean(0), np.cov(x, rowvar=False), 40
    if case == "nan_sigma":
        sigma[1, 2] = sigma[2, 1] = np.nan
    elif case == "nan_mu":
        mu[0] = np.nan
    elif case == "not_psd":
        sigma = np.diag([1.0, 1.0, 1.0, -0.5])
    elif case == "asymmetric":
        sigma[0, 1] += 0.3
    else:
        n = 1
    path = _stats_file(tmp_path / f"{case}.npz", mu, sigma, n)
    with pytest.raises(InputError, match=rf"{case}\.npz: field '{field}': .*{says}"):
        load_statistics(path)


def test_sound_reference_statistics_still_load(tmp_path):
    x = np.random.default_rng(1).standard_normal((30, 6))
    path = _stats_file(tmp_path / "ok.npz", x.mean(0), np.cov(x, rowvar=False), 30)
    stats, _ = load_statistics(path)
    assert stats.n == 30


# ---------------------------------------------------------------- Ray: bounded join


@pytest.fixture
def fake_ray(monkeypatch):
    """A stub at the connection boundary: records init calls (Ray need not be installed)."""
    calls: list[dict] = []
    stub = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: calls.append(kw))
    monkeypatch.setitem(sys.modules, "ray", stub)
    return calls


def test_unreachable_address_is_one_line_before_ray_is_asked(fake_ray, monkeypatch):
    monkeypatch.setenv(ray_cluster.CONNECT_TIMEOUT_ENV, "5")
    with pytest.raises(ConfigError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1 within 5 s"):
        ray_cluster.RayCluster.connect("127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"ray://127\.0\.0\.1:1"):
        ray_cluster.RayCluster.connect("ray://127.0.0.1:1")
    assert fake_ray == []


def test_run_with_an_unreachable_ray_address_is_one_line_and_exit_2(fake_ray, tmp_path, capsys):
    from trecs_eval.cli import main

    config = tmp_path / "c.toml"
    config.write_text(f'out_dir = "{tmp_path / "out"}"\n[[systems]]\nname = "noise"\n', encoding="utf-8")
    assert main(["run", str(config), "--ray", "127.0.0.1:1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("trecs-eval: error: cannot reach the Ray cluster at 127.0.0.1:1 within 30 s")
    assert len(err) <= 2 and fake_ray == [] and not (tmp_path / "out").exists()


def test_reachable_address_goes_on_to_ray(fake_ray):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        cluster = ray_cluster.RayCluster.connect(address)
    assert cluster.owned and fake_ray[0]["address"] == address


@pytest.mark.parametrize("raw", ["0", "-1", "soon"])
def test_bad_timeout_setting_is_refused(monkeypatch, raw):
    monkeypatch.setenv(ray_cluster.CONNECT_TIMEOUT_ENV, raw)
    with pytest.raises(ConfigError, match="expected seconds > 0"):
        ray_cluster.connect_timeout()


def test_address_forms():
    assert ray_cluster.host_port("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert ray_cluster.host_port("ray://head:10001") == ("head", 10001)
    assert ray_cluster.host_port("[::1]:6379") == ("::1", 6379)
    assert ray_cluster.host_port("auto") is None


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:0"])
def test_a_port_out_of_range_is_one_line_not_an_overflow_traceback(fake_ray, address):
    with pytest.raises(ConfigError, match=r"is not in 1\.\.65535"):
        ray_cluster.RayCluster.connect(address)


# A child process whose stub Ray accepts the TCP connection but never finishes init (a port that
# is not a Ray head): only the watchdog can end it.
_HANGING_CHILD = textwrap.dedent("""
    import socket, sys, threading, types
    listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen()
    def init(**kw):
        print("init entered", flush=True)
        threading.Event().wait()
    sys.modules["ray"] = types.SimpleNamespace(is_initialized=lambda: False, init=init)
    from trecs_eval.execution.ray_cluster import RayCluster
    RayCluster.connect("127.0.0.1:%d" % listener.getsockname()[1])
    print("connect returned", flush=True)
""")


def _child(timeout_s: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), ray_cluster.CONNECT_TIMEOUT_ENV: timeout_s}
    return subprocess.Popen([sys.executable, "-c", _HANGING_CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_a_join_that_never_finishes_ends_with_one_line_and_exit_2():
    child = _child("1")
    out, err = child.communicate(timeout=120)  # a safety net for a broken watchdog, not a timing check
    assert child.returncode == 2
    assert "init entered" in out and "connect returned" not in out
    assert err.strip().splitlines() == [err.strip()] and "no answer within 1 s" in err


def test_sigterm_stops_a_hanging_join():
    child = _child("600")
    assert child.stdout.readline().strip() == "init entered"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in err and "Traceback" not in err

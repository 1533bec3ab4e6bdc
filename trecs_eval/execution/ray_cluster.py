"""Starting, joining and describing a Ray cluster (Ray is optional: ``pip install 'trecs-eval[ray]'``).

``address``: ``None`` starts a local cluster in this process (``ray.init``: workers inherit this
process's environment and ``sys.path``); ``"auto"`` joins the cluster a ``ray start --head``
on this node runs; ``"HOST:6379"`` or ``"ray://HOST:10001"`` a remote head. A cluster this
process started is shut down by :meth:`RayCluster.close`; a joined one is only disconnected
from, and one already initialised by the caller (tests, notebooks) is left alone.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from trecs_eval.errors import ConfigError, TrecsEvalError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'trecs-eval[ray]'"
# Ray's object store takes 30 % of RAM by default; shards here are a few MB of features or image
# paths, so a local cluster gets a small store (Ray's minimum is 75 MiB).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
CONNECT_TIMEOUT_ENV = "TRECS_EVAL_RAY_CONNECT_TIMEOUT_S"
DEFAULT_CONNECT_TIMEOUT_S = 30.0
EXIT_USER_ERROR = 2
MAX_PORT = 65535
WATCHED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WATCH_TICK_S = 0.2  # how often the watchdog looks at the clock between signals


def connect_timeout() -> float:
    """Seconds a join may take (``$TRECS_EVAL_RAY_CONNECT_TIMEOUT_S``, default 30)."""
    raw = os.environ.get(CONNECT_TIMEOUT_ENV, str(DEFAULT_CONNECT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"${CONNECT_TIMEOUT_ENV} = {raw!r}: expected seconds > 0")
    return value


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto`` and other forms."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    if not 1 <= int(port) <= MAX_PORT:
        raise ConfigError(f"--ray {address}: port {port} is not in 1..{MAX_PORT}")
    return host.strip("[]"), int(port)


def probe(address: str, timeout_s: float) -> None:
    """A one-line ConfigError unless ``address`` accepts a TCP connection within ``timeout_s``."""
    target = host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout_s).close()
    except OSError as err:
        reason = "no answer" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise ConfigError(f"cannot reach the Ray cluster at {address} within {timeout_s:g} s ({reason})",
                          hint="`ray status` on the head node shows its address; "
                               f"${CONNECT_TIMEOUT_ENV} sets the time allowed") from None


def _leave(line: str, code: int) -> None:
    os.write(sys.stderr.fileno(), f"trecs-eval: {line}\n".encode())
    os._exit(code)


@contextmanager
def _signal_pipe() -> Iterator[int | None]:
    """A pipe that Python's C-level signal handler writes SIGTERM and SIGINT numbers to, from any
    thread, even while the main thread is held in native code (main thread only; else None)."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    old = {sig: signal.signal(sig, lambda signum, frame: None) for sig in WATCHED_SIGNALS}
    old_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    try:
        yield read_end
    finally:
        signal.set_wakeup_fd(old_fd)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        os.close(read_end)
        os.close(write_end)


@contextmanager
def watchdog(address: str, timeout_s: float) -> Iterator[None]:
    """End the process with one line if the body outlasts ``timeout_s``, or at once on SIGTERM
    (exit 143) or Ctrl-C (exit 130)."""
    done = threading.Event()
    with _signal_pipe() as signals:
        def watch() -> None:
            deadline = time.monotonic() + timeout_s
            while not done.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    _leave(f"error: cannot reach the Ray cluster at {address}: no answer within "
                           f"{timeout_s:g} s (${CONNECT_TIMEOUT_ENV})", EXIT_USER_ERROR)
                if signals is None:
                    done.wait(min(left, WATCH_TICK_S))
                    continue
                ready, _, _ = select.select([signals], [], [], min(left, WATCH_TICK_S))
                for number in os.read(signals, 64) if ready else b"":
                    if number in WATCHED_SIGNALS:
                        name = signal.Signals(number).name
                        _leave(f"stopped by {name} while connecting to the Ray cluster at {address}",
                               128 + number)

        thread = threading.Thread(target=watch, name="ray-connect-watchdog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def import_ray() -> ModuleType:
    """``ray``, or a one-line ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"the ray engine needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def local_cluster_options(num_cpus: int | None = None,
                          object_store_bytes: int = LOCAL_OBJECT_STORE_BYTES) -> dict[str, Any]:
    """``ray.init`` keywords for a cheap local cluster (no dashboard, small object store)."""
    return {"num_cpus": num_cpus, "include_dashboard": False, "object_store_memory": object_store_bytes,
            "log_to_driver": False, "configure_logging": False}


@dataclass
class RayCluster:
    """A connection to a Ray cluster and whether this process owns it."""

    ray: ModuleType
    address: str | None
    owned: bool
    startup_seconds: float

    @classmethod
    def connect(cls, address: str | None) -> RayCluster:
        ray = import_ray()
        if ray.is_initialized():
            return cls(ray, address, owned=False, startup_seconds=0.0)
        started = time.perf_counter()
        try:
            if address is None:
                ray.init(**local_cluster_options())
            else:
                timeout_s = connect_timeout()
                probe(address, timeout_s)
                with watchdog(address, timeout_s):
                    ray.init(address=address, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as err:
            where = "start a local Ray cluster" if address is None else f"reach the Ray cluster at {address}"
            raise ConfigError(f"cannot {where}: {err}",
                              hint="`ray status` on the head node shows its address; "
                                   "--ray auto joins a cluster started on this node") from None
        seconds = time.perf_counter() - started
        log.info("ray: %s in %.1f s", "started a local cluster" if address is None else f"joined {address}",
                 seconds)
        return cls(ray, address, owned=True, startup_seconds=seconds)

    def resources(self) -> dict[str, int]:
        """Alive nodes and total CPUs / GPUs of the cluster."""
        total = self.ray.cluster_resources()
        nodes = sum(1 for node in self.ray.nodes() if node.get("Alive"))
        return {"nodes": nodes, "cpus": int(total.get("CPU", 0)), "gpus": int(total.get("GPU", 0))}

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()


def unwrapped(ray: ModuleType, results: Iterator[object]) -> Iterator[object]:
    """``results`` of Ray tasks, a worker's TrecsEvalError re-raised as itself (one line at the CLI,
    as the local engine gives) instead of Ray's wrapper with the remote traceback."""
    try:
        yield from results
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, TrecsEvalError):
            raise cause from None
        raise

"""Starting, joining and describing a Ray cluster (Ray is optional: ``pip install 'trecs-eval[ray]'``).

``address``: ``None`` starts a local cluster in this process (``ray.init``: workers inherit this
process's environment and ``sys.path``); ``"auto"`` joins the cluster a ``ray start --head``
on this node runs; ``"HOST:6379"`` or ``"ray://HOST:10001"`` a remote head. A cluster this
process started is shut down by :meth:`RayCluster.close`; a joined one is only disconnected
from, and one already initialised by the caller (tests, notebooks) is left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from trecs_eval.errors import ConfigError, TrecsEvalError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'trecs-eval[ray]'"
# Ray's object store takes 30 % of RAM by default; shards here are a few MB of features or image
# paths, so a local cluster gets a small store (Ray's minimum is 75 MiB).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


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

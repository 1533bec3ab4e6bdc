"""Feature extraction on Ray: an actor pool per run (each actor loads the extractors once), the
driver the only writer of the feature cache.

The driver keeps the extractors' whole cache logic (content keys, hits, one forward pass per
distinct content); only their forward-pass methods are swapped for remote ones
(:class:`RayFeatureExtractors`): Inception's ``_compute`` and CLIP's ``_embed_images`` /
``_embed_texts``. Their inputs are cut into shards of whole batches in the local order, so every
actor runs exactly the local engine's batches, with the same number of torch threads, and returns
float32 arrays unchanged through the object store: the features are bit-identical to the local
engine's (tests/integration/test_ray_engine.py). The driver writes each shard's rows into the
SQLite cache as it arrives (one writer, no concurrent SQLite writers across nodes, no partial
rows: one transaction per shard).

Why actors and not Ray Data's ``map_batches``: Ray Data re-blocks its input, so batch composition
(and with it the float round-off of a CPU forward pass) would depend on block boundaries; its
streaming executor also adds scheduler threads and start-up time that a 2-core machine pays for
in forward passes. Ordered shards over an ``ActorPool`` give the same scaling (one model per
actor, as many actors as the cluster's CPUs or GPUs) with the local batching guaranteed.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from tqdm import tqdm

from trecs_eval.features.registry import ExtractorSettings, FeatureExtractors

log = logging.getLogger(__name__)


class NullCache:
    """A cache that holds nothing: workers compute, the driver caches."""

    def get_many(self, identity_key: str, content_keys: Any) -> dict[str, dict[str, np.ndarray]]:
        return {}

    def put_many(self, identity_key: str, entries: Any) -> None:
        return None


class FeatureWorker:
    """One Ray actor: the run's extractors (models loaded on first use, then kept)."""

    def __init__(self, settings: ExtractorSettings, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)  # as the driver: same kernels, same round-off
        self.extractors = FeatureExtractors(replace(settings, progress=False), cache=NullCache())  # type: ignore[arg-type]

    def inception(self, todo: list[tuple[str, str]]) -> dict[str, dict[str, np.ndarray]]:
        return self.extractors.inception_extractor._compute(todo, "")

    def clip_images(self, paths: list[str], clip_config: dict[str, Any] | None) -> np.ndarray:
        register_clip_config(self.extractors.settings.clip_model, clip_config)
        return self.extractors.clip._embed_images(paths)

    def clip_texts(self, texts: list[str], clip_config: dict[str, Any] | None) -> np.ndarray:
        register_clip_config(self.extractors.settings.clip_model, clip_config)
        return self.extractors.clip._embed_texts(texts)


def runtime_clip_config(model: str) -> dict[str, Any] | None:
    """open_clip's config of ``model`` as this process knows it: a model registered at run time
    (``open_clip.add_model_config``, e.g. by a plug-in) is unknown to a fresh worker process."""
    import open_clip

    return open_clip.get_model_config(model)


def register_clip_config(model: str, config: dict[str, Any] | None) -> None:
    """Register the driver's config of ``model`` with this worker's open_clip if it lacks it."""
    import open_clip

    if config is None or model in open_clip.list_models():
        return
    path = Path(tempfile.mkdtemp(prefix="trecs-eval-clip-config-")) / f"{model}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    open_clip.add_model_config(path)


class FeaturePool:
    """Actors made on first use; :meth:`map` returns shard results in input order."""

    def __init__(self, ray: ModuleType, settings: ExtractorSettings, workers: int,
                 actor_options: dict[str, float]) -> None:
        import torch

        self.ray, self.settings, self.workers = ray, settings, max(1, workers)
        self.actor_options, self.threads = actor_options, torch.get_num_threads()
        self._actors: list[Any] = []

    def map(self, method: str, shards: Sequence[Any], *args: Any) -> Iterator[Any]:
        """``actor.method(shard, *args)`` for every shard, results in order (a worker's
        TrecsEvalError raised as itself)."""
        from ray.util import ActorPool

        from trecs_eval.execution.ray_cluster import unwrapped

        if not self._actors:
            actor = self.ray.remote(max_restarts=3, max_task_retries=3, **self.actor_options)(FeatureWorker)
            settings = worker_settings(self.settings)
            self._actors = [actor.remote(settings, self.threads) for _ in range(self.workers)]
        pool = ActorPool(self._actors[:max(1, min(len(self._actors), len(shards)))])
        return unwrapped(self.ray, pool.map(lambda a, s: getattr(a, method).remote(s, *args), shards))

    def close(self) -> None:
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []


def worker_settings(settings: ExtractorSettings) -> ExtractorSettings:
    """The driver's settings with uncalibrated weights named by the driver's file paths: a worker
    must load the very files the driver's identity hashes, not make its own in its own cache dir."""
    if not settings.uncalibrated:
        return settings
    from trecs_eval.features.clip import uncalibrated_weights_path
    from trecs_eval.features.weights import resolve_inception_weights

    inception = resolve_inception_weights(None, True, settings.seed).path
    clip = uncalibrated_weights_path(settings.clip_model, settings.seed)  # made by the driver's embedder
    return replace(settings, uncalibrated=False, inception_weights=str(inception), clip_pretrained=str(clip))


def batch_shards(items: Sequence[Any], batch_size: int, shard_batches: int) -> list[list[Any]]:
    """Contiguous shards of ``shard_batches`` whole batches, in order."""
    size = batch_size * shard_batches
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class RayFeatureExtractors(FeatureExtractors):
    """:class:`FeatureExtractors` whose forward passes run in a :class:`FeaturePool`."""

    def __init__(self, settings: ExtractorSettings, cache: Any, pool: FeaturePool,
                 shard_batches: int) -> None:
        super().__init__(settings, cache)
        self.pool, self.shard_batches = pool, shard_batches

    def get(self, space: str) -> Any:
        """The ``space`` extractor; Inception's and CLIP's forward passes swapped for remote ones (the
        driver never loads the Inception model). Other spaces (DINOv2, CMMD's CLIP, segmenters) run
        in the driver: they are not the demo's or the paper's cost."""
        extractor = super().get(space)
        if space == "inception" and "_compute" not in vars(extractor.extractor):
            extractor.extractor._compute = partial(self._inception_remote, extractor.extractor)
        elif space == "clip" and "_embed_images" not in vars(extractor.embedder):
            extractor.embedder._embed_images = partial(self._arrays_remote, "clip_images", "CLIP images")
            extractor.embedder._embed_texts = partial(self._arrays_remote, "clip_texts", "CLIP texts")
        return extractor

    def _inception_remote(self, extractor: Any, todo: list[tuple[str, str]], ident: str
                          ) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        shards = batch_shards(todo, extractor.batch_size, self.shard_batches)
        with tqdm(total=len(todo), unit="img", desc="Inception (ray)",
                  disable=not self.settings.progress) as bar:
            for rows in self.pool.map("inception", shards):
                extractor.cache.put_many(ident, rows)  # each shard cached as it arrives: resumable
                out.update(rows)
                bar.update(len(rows))
        return out

    def _arrays_remote(self, method: str, desc: str, inputs: Sequence[str]) -> np.ndarray:
        shards = batch_shards(list(inputs), self.settings.batch_size, self.shard_batches)
        config = runtime_clip_config(self.settings.clip_model)
        parts = list(tqdm(self.pool.map(method, shards, config), total=len(shards), desc=f"{desc} (ray)",
                          unit="shard", disable=not self.settings.progress))
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def ray_extractors(extractors: FeatureExtractors, pool: FeaturePool, shard_batches: int
                   ) -> RayFeatureExtractors:
    """``extractors`` (settings and cache) with remote forward passes."""
    return RayFeatureExtractors(extractors.settings, extractors.cache, pool, shard_batches)



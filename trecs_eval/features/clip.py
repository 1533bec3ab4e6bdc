"""CLIP image and text embeddings (open_clip), L2-normalized, cached by content.

``ClipEmbedder(model="ViT-B-32", pretrained="openai")`` is the default: the weights open_clip
downloads on first use (``--clip-pretrained PATH`` for a local checkpoint file,
``--uncalibrated-weights`` for seeded random weights made by
:func:`~trecs_eval.features.clip_weights.make_calibrated_clip_checkpoint` and loaded as a PATH).

* Images: open_clip's own transform for the model (bicubic resize of the short side to 224,
  centre crop, CLIP mean/std); the transform is written into the identity's ``preprocessing``.
* Texts: a narrative becomes one or more chunks by the text policy
  (:mod:`trecs_eval.features.text_policy`); the narrative embedding is
  ``normalize(mean_k normalize(embed(chunk_k)))``.
* Cache (:class:`~trecs_eval.features.cache.FeatureCache`): image rows are keyed by the sha256
  of the file bytes under :attr:`ClipEmbedder.image_identity` (no text policy in it); text rows
  by the sha256 of the exact chunk text under :attr:`ClipEmbedder.identity`, which includes the
  policy. A warm re-run computes no forward pass (``forward_batches`` counts them).

>>> emb = ClipEmbedder(pretrained="/path/to/clip.pt")                    # doctest: +SKIP
>>> emb.image_embeddings(["a.png"]).shape                                 # doctest: +SKIP
(1, 512)
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from trecs_eval.data.narratives import Narrative
from trecs_eval.device import resolve_device
from trecs_eval.errors import ConfigError, InputError
from trecs_eval.features.cache import (
    FeatureCache,
    content_key_for_text,
    default_cache_dir,
    image_files_and_keys,
)
from trecs_eval.features.clip_weights import (
    CALIBRATION_VERSION,
    load_clip_model,
    make_calibrated_clip_checkpoint,
)
from trecs_eval.features.decode import decode_rgb
from trecs_eval.features.identity import ExtractorIdentity, device_extra, sha256_file
from trecs_eval.features.text_policy import DEFAULT_TEXT_POLICY, TextChunks, check_policy, chunk_narrative
from trecs_eval.features.weight_files import checked_cache_file

DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "openai"
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class TextEmbeddings:
    """Narrative embeddings and what the text policy did.

    ``embeddings``: (N, D) float32, rows L2-normalized. ``truncated_fraction``: share of
    narratives with tokens not embedded. ``over_length_fraction``: share whose caption exceeds
    the context (whatever the policy). ``n_chunks``: (N,) int, chunks per narrative.
    """

    embeddings: np.ndarray
    truncated_fraction: float
    n_chunks: np.ndarray
    policy: str
    over_length_fraction: float

    def info(self) -> dict[str, float | str]:
        """What the policy did, for ``MetricResult.params`` (``text_info`` of the CLIP metrics)."""
        return {
            "policy": self.policy,
            "truncated_fraction": self.truncated_fraction,
            "over_length_fraction": self.over_length_fraction,
            "mean_chunks": float(self.n_chunks.mean()),
        }


def uncalibrated_weights_path(model: str, seed: int) -> Path:
    """Where ``--uncalibrated-weights`` keeps its generated checkpoint (user cache dir)."""
    name = f"clip-{model}-uncalibrated-seed{seed}-v{CALIBRATION_VERSION}.pt"
    return default_cache_dir() / "weights" / name


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


def _clip_identity(
    model: str, weights_file: str, preprocess: str, context_length: int, text_policy: str,
    pretrained_label: str, quick_gelu: bool, seed: int | None,
) -> ExtractorIdentity:
    """The full identity: weights by sha256, transform, context, policy; UNCALIBRATED when random."""
    return ExtractorIdentity(
        name=f"open_clip/{model}",
        weights_sha256=sha256_file(weights_file),
        layers=("image_embeds", "text_embeds"),
        preprocessing="open_clip:" + " ".join(preprocess.split()),
        dtype="float32",
        uncalibrated=pretrained_label == "uncalibrated",
        extra={
            "model": model,
            "pretrained": pretrained_label,  # tag name, "file" (content is in the sha256) or "uncalibrated"
            "quick_gelu": quick_gelu,
            "context_length": context_length,
            "normalized": True,
            "text_policy": text_policy,
            "seed": seed,
        },
    )


class ClipEmbedder:
    """Image and narrative embeddings from one open_clip model; see the module docstring.

    ``pretrained`` is a tag (downloaded by open_clip on first use) or a checkpoint file; with
    ``uncalibrated=True`` it is ignored and seeded random weights (``seed``) are generated once
    into the user cache dir and loaded as a file. ``device="auto"`` picks CUDA when available.
    ``forward_batches`` counts model calls per kind (``image``/``text``).
    """

    def __init__(
        self,
        model: str = DEFAULT_CLIP_MODEL,
        pretrained: str = DEFAULT_CLIP_PRETRAINED,
        device: str = "auto",
        text_policy: str = DEFAULT_TEXT_POLICY,
        uncalibrated: bool = False,
        seed: int = 0,
        cache: FeatureCache | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"CLIP batch size must be >= 1, got {batch_size}")
        self.text_policy = check_policy(text_policy)
        self.model_name, self.seed, self.cache = model, seed, cache
        self.batch_size, self.progress = batch_size, progress
        self.device = resolve_device(device)
        if uncalibrated:  # our cached file, checked against the sha256 recorded when it was made
            path = uncalibrated_weights_path(model, seed)
            checked_cache_file(path, lambda target: make_calibrated_clip_checkpoint(target, model, seed))
            pretrained = str(path)
        self.model, self.preprocess, weights_file, details = load_clip_model(model, pretrained, self.device)
        import open_clip

        self.tokenizer = open_clip.get_tokenizer(model)
        if not hasattr(self.tokenizer, "encode"):
            raise ConfigError(f"CLIP model {model!r}: tokenizer has no encode(); not supported")
        self.context_length = int(self.model.context_length)
        self.forward_batches = {"image": 0, "text": 0}
        self.identity = _clip_identity(
            model, weights_file, str(self.preprocess), self.context_length, self.text_policy,
            "uncalibrated" if uncalibrated else (pretrained if details["source"] == "tag" else "file"),
            details["quick_gelu"], seed if uncalibrated else None,
        )
        self.identity = dataclasses.replace(self.identity, extra={**self.identity.extra,
                                                                  **device_extra(self.device)})
        self.image_identity = dataclasses.replace(
            self.identity, extra={k: v for k, v in self.identity.extra.items() if k != "text_policy"}
        )

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens of ``text`` without start/end (the tokenizer's own cleaning applied)."""
        return len(self.tokenizer.encode(text))

    def chunks(self, narrative: Narrative) -> TextChunks:
        """The texts this embedder's policy embeds for ``narrative``."""
        return chunk_narrative(narrative, self.text_policy, self.count_tokens, self.context_length)

    # -- images ---------------------------------------------------------------------------------
    def _load_image(self, path: str) -> torch.Tensor:
        return self.preprocess(Image.fromarray(decode_rgb(path)))  # any mode; bad files name themselves

    def _embed_images(self, paths: Sequence[str]) -> np.ndarray:
        out = []
        batches = range(0, len(paths), self.batch_size)
        for start in tqdm(batches, desc="CLIP images", unit="batch", disable=not self.progress):
            pixels = torch.stack([self._load_image(p) for p in paths[start : start + self.batch_size]])
            with torch.inference_mode():
                out.append(_normalize(self.model.encode_image(pixels.to(self.device))).cpu().numpy())
            self.forward_batches["image"] += 1
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def image_embeddings(self, paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
        """(N, D) float32 L2-normalized embeddings of image files, in the order given."""
        files, keys = image_files_and_keys(paths, "embed")
        return self._cached(keys, dict(zip(keys, files, strict=True)), "image", self._embed_images)

    # -- texts ----------------------------------------------------------------------------------
    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        batches = range(0, len(texts), self.batch_size)
        for start in tqdm(batches, desc="CLIP texts", unit="batch", disable=not self.progress):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size]), self.context_length)
            with torch.inference_mode():
                out.append(_normalize(self.model.encode_text(tokens.to(self.device))).cpu().numpy())
            self.forward_batches["text"] += 1
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def text_embeddings(self, narratives: Sequence[Narrative]) -> TextEmbeddings:
        """Narrative embeddings under the text policy; see :class:`TextEmbeddings`."""
        if not narratives:
            raise InputError("no narratives to embed", field="narratives")
        per_narrative = [self.chunks(n) for n in narratives]
        unique = list(dict.fromkeys(c for tc in per_narrative for c in tc.chunks))
        keys = [content_key_for_text(c) for c in unique]
        chunk_emb = self._cached(keys, dict(zip(keys, unique, strict=True)), "text", self._embed_texts)
        row = {c: i for i, c in enumerate(unique)}
        mean = np.stack([chunk_emb[[row[c] for c in tc.chunks]].mean(axis=0) for tc in per_narrative])
        embeddings = (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)
        return TextEmbeddings(
            embeddings=embeddings,
            truncated_fraction=float(np.mean([tc.truncated for tc in per_narrative])),
            n_chunks=np.array([len(tc.chunks) for tc in per_narrative], dtype=np.int64),
            policy=self.text_policy,
            over_length_fraction=float(np.mean([tc.over_length for tc in per_narrative])),
        )

    # -- cache ----------------------------------------------------------------------------------
    def _cached(self, keys: list[str], source: dict[str, Any], kind: str, compute: Any) -> np.ndarray:
        """Rows for ``keys`` (duplicates computed once): cache hits first, one forward pass for the rest."""
        identity = (self.image_identity if kind == "image" else self.identity).key()
        unique = list(dict.fromkeys(keys))
        found = {k: v[kind] for k, v in self.cache.get_many(identity, unique).items()} if self.cache else {}
        missing = [k for k in unique if k not in found]
        if missing:
            computed = compute([source[k] for k in missing])
            fresh = {k: computed[i] for i, k in enumerate(missing)}
            if self.cache:
                self.cache.put_many(identity, {k: {kind: v} for k, v in fresh.items()})
            found.update(fresh)
        return np.stack([np.asarray(found[k], dtype=np.float32) for k in keys])


_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], ClipEmbedder] = weakref.WeakValueDictionary()


def shared_clip_embedder(cache: FeatureCache | None, **settings: Any) -> ClipEmbedder:
    """One :class:`ClipEmbedder` per (settings, cache) while someone holds it: the ``clip`` and
    ``clip_crops`` spaces of a run share one model in memory instead of loading it twice."""
    key = (id(cache), *sorted(settings.items()))
    found = _SHARED.get(key)
    if found is None or found.cache is not cache:
        found = ClipEmbedder(cache=cache, **settings)
        _SHARED[key] = found
    return found

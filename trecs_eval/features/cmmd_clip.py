"""The CLIP image embedder that defines CMMD: open_clip ``ViT-L-14-336`` with the ``openai`` weights.

CMMD (Jayasumana et al. 2024; :mod:`trecs_eval.metrics.cmmd`) is defined on the L2-normalized
image embeddings of CLIP ViT-L/14 at 336 px (768-d). This is the existing
:class:`~trecs_eval.features.clip.ClipEmbedder` with that model, so weights resolution (tag,
local file, ``--uncalibrated-weights``), the identity (weights sha256, open_clip transform) and
the content-addressed cache are the same code as for CLIPScore; only the model differs, and the
image rows are cached under their own identity.

Tests and small configs pass another model (e.g. ``ViT-B-32`` or a tiny registered config)
with random weights; :func:`is_defining_cmmd_model` tells the caller whether the embedder is
the defined one, so a result made with another backbone is never reported as ``cmmd`` proper
(the identity's ``extra["model"]`` names it).

    emb = cmmd_embedder(pretrained="/models/ViT-L-14-336px.pt", device="cuda")
    gen = emb.image_embeddings(generated_paths)   # (n, 768) float32, unit norm
"""

from __future__ import annotations

from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.clip import ClipEmbedder

CMMD_CLIP_MODEL = "ViT-L-14-336"
CMMD_CLIP_PRETRAINED = "openai"


def is_defining_cmmd_model(embedder: ClipEmbedder) -> bool:
    """True when the embedder is ViT-L-14-336 with the ``openai`` tag or a local file (not random)."""
    extra = embedder.identity.extra
    return (embedder.model_name == CMMD_CLIP_MODEL and not embedder.identity.uncalibrated
            and extra.get("pretrained") in (CMMD_CLIP_PRETRAINED, "file"))


def cmmd_embedder(*, model: str = CMMD_CLIP_MODEL, pretrained: str = CMMD_CLIP_PRETRAINED,
                  device: str = "auto", uncalibrated: bool = False, seed: int = 0,
                  cache: FeatureCache | None = None, batch_size: int = 16,
                  progress: bool = True) -> ClipEmbedder:
    """A :class:`ClipEmbedder` for CMMD's image embeddings (defaults: the defining model).

    ``pretrained`` is the ``openai`` tag (downloaded by open_clip, failing fast offline) or a
    local checkpoint PATH; ``uncalibrated=True`` makes seeded random weights for ``model``.
    """
    return ClipEmbedder(model=model, pretrained=pretrained, device=device, uncalibrated=uncalibrated,
                        seed=seed, cache=cache, batch_size=batch_size, progress=progress)

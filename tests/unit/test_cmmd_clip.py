"""CMMD's embedder: the existing ClipEmbedder with CMMD's model, on the tiny random-weights path."""

from __future__ import annotations

import numpy as np
import pytest

from tests.clip_support import register_tiny_clip, write_test_images
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.cmmd_clip import (
    CMMD_CLIP_MODEL,
    CMMD_CLIP_PRETRAINED,
    cmmd_embedder,
    is_defining_cmmd_model,
)
from trecs_eval.metrics.cmmd import cmmd_result

UNIT_NORM_ABS_TOL = 1e-5  # float32 embeddings, normalized in float32


def test_defaults_name_the_defining_model() -> None:
    import open_clip

    assert CMMD_CLIP_MODEL in open_clip.list_models()
    assert CMMD_CLIP_PRETRAINED in open_clip.list_pretrained_tags_by_model(CMMD_CLIP_MODEL)
    cfg = open_clip.get_model_config(CMMD_CLIP_MODEL)
    assert cfg["vision_cfg"]["image_size"] == 336 and cfg["vision_cfg"]["patch_size"] == 14


def test_random_tiny_embedder_feeds_cmmd(tmp_path) -> None:
    model = register_tiny_clip(tmp_path)
    a = write_test_images(tmp_path / "a", 12, seed=1)
    b = write_test_images(tmp_path / "b", 12, seed=2)
    cache = FeatureCache(tmp_path / "cache.sqlite")
    emb = cmmd_embedder(model=model, uncalibrated=True, device="cpu", cache=cache, progress=False)
    assert not is_defining_cmmd_model(emb)
    assert emb.identity.uncalibrated and emb.identity.extra["model"] == model
    x, y = emb.image_embeddings(a), emb.image_embeddings(b)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=UNIT_NORM_ABS_TOL)
    result = cmmd_result(x, y)
    assert result.value > 0 and result.warnings == ()
    assert cmmd_result(x, x, interval=False).value == pytest.approx(0.0, abs=1e-9)
    again = emb.image_embeddings(a)  # second call: rows from the cache, no forward pass
    assert emb.forward_batches["image"] == 2 and np.array_equal(again, x)

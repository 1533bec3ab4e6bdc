"""CLIPScore equals a direct open_clip computation on the same checkpoint file (default ViT-B-32).

The checkpoint is made by ``make_calibrated_clip_checkpoint`` and loaded by both sides as a
PATH, exactly as a user's ``--clip-pretrained PATH`` would be. The direct side uses only
open_clip and torch: its transform, its tokenizer, ``encode_image``/``encode_text``, cosine,
``w * max(cos, 0)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from tests.clip_support import write_test_images
from trecs_eval.data.narratives import Narrative
from trecs_eval.features.clip import ClipEmbedder
from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint
from trecs_eval.metrics.bootstrap import bootstrap_mean_ci
from trecs_eval.metrics.clip_score import clip_scores, compute_clip_score

# Same weights, same float32 ops; only batch composition differs (ours 4 images at once, theirs 1):
# cosines agree to ~1e-6, i.e. 1e-4 on the 0..100 scale.
CLIP_SCORE_ABS_TOL_VS_OPEN_CLIP = 1e-3
CLIP_S_ABS_TOL_VS_OPEN_CLIP = CLIP_SCORE_ABS_TOL_VS_OPEN_CLIP * 2.5 / 100.0

TEXTS = [
    "A dog is running on the green grass.",
    "In this image we can see a red car in the street. At the top there is the sky.",
    "There is a plate of food on a wooden table.",
    "Two people are standing near a white wall.",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, list[Path]]:
    directory = tmp_path_factory.mktemp("vitb32")
    weights = directory / "ViT-B-32-calibrated.pt"
    make_calibrated_clip_checkpoint(weights, "ViT-B-32", seed=0)
    return weights, write_test_images(directory / "imgs", 4, size=96)


def _direct_open_clip(weights: Path, images: list[Path], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=str(weights))
    model.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        img = torch.cat([model.encode_image(preprocess(Image.open(p))[None]) for p in images])
        txt = torch.cat([model.encode_text(tokenizer([t])) for t in texts])
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    return img.numpy().astype(np.float64), txt.numpy().astype(np.float64)


def test_clip_score_equals_direct_open_clip(setup) -> None:
    weights, images = setup
    pairs = [(i, j) for i in range(4) for j in range(4)]  # every image with every text: both cosine signs
    ids = [f"{i}-{j}" for i, j in pairs]
    embedder = ClipEmbedder("ViT-B-32", str(weights), progress=False)
    assert embedder.identity.name == "open_clip/ViT-B-32" and embedder.identity.extra["pretrained"] == "file"
    narratives = [Narrative("coco", str(j), 0, t) for j, t in enumerate(TEXTS)]
    ours_img = embedder.image_embeddings(images)
    ours_txt = embedder.text_embeddings(narratives).embeddings
    identity = embedder.identity.to_dict()
    del embedder  # one 600 MB model in memory at a time
    ref_img, ref_txt = _direct_open_clip(weights, images, TEXTS)
    ref_cos = np.array([ref_img[i] @ ref_txt[j] for i, j in pairs])
    assert (ref_cos < 0).any() and (ref_cos > 0).any(), "pairs must exercise the max(cos, 0) clamp"

    v = ours_img[[i for i, _ in pairs]]
    t = ours_txt[[j for _, j in pairs]]
    for name, weight, tol in (("clip_score", 100.0, CLIP_SCORE_ABS_TOL_VS_OPEN_CLIP),
                              ("clip_s", 2.5, CLIP_S_ABS_TOL_VS_OPEN_CLIP)):
        expected = weight * np.maximum(ref_cos, 0.0)
        result = compute_clip_score(ids, v, t, name=name, seed=1, extractor=identity)
        got = np.array([result.per_sample[k] for k in ids])
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol)
        assert result.value == pytest.approx(expected.mean(), abs=tol)
        assert (result.value, result.ci_low, result.ci_high) == bootstrap_mean_ci(got, 1000, seed=1)
        assert result.params["weight"] == weight and result.status == "ok" and result.n == 16


def test_clip_scores_closed_forms() -> None:
    v = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    t = np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [4.0, 3.0]])
    np.testing.assert_allclose(clip_scores(v, t, 100.0), [100.0, 0.0, 0.0, 100.0 * 24.0 / 25.0])
    np.testing.assert_allclose(clip_scores(v, t, 2.5), [2.5, 0.0, 0.0, 2.5 * 24.0 / 25.0])

"""ClipEmbedder on a tiny registered open_clip config: loading, calibration, cache, invariances, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import open_clip
import pytest

from tests.clip_support import register_tiny_clip, write_test_images
from trecs_eval.data.narratives import Narrative
from trecs_eval.errors import InputError, MissingWeightsError, UnknownNameError
from trecs_eval.features import clip_weights
from trecs_eval.features.cache import FeatureCache
from trecs_eval.features.clip import ClipEmbedder, uncalibrated_weights_path
from trecs_eval.features.clip_weights import make_calibrated_clip_checkpoint
from trecs_eval.features.identity import sha256_file
from trecs_eval.metrics.clip_score import compute_clip_score

# float32 forward passes of different batch compositions differ in the last bits only
BATCH_INVARIANCE_ABS_TOL = 1e-5
# calibration must spread embeddings: mean off-diagonal cosine of varied inputs stays well below 1
MAX_MEAN_OFF_DIAGONAL_COS = 0.8

CAPTIONS = [
    "In this image we can see a dog on the grass.",
    "A red car is parked in the street. The sky is blue.",
    "There is a person holding an umbrella.",
    "We can see a table with plates, cups and a vase of flowers.",
    "A train on the tracks near a station.",
    "Two people are playing tennis on a court.",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[str, Path]:
    directory = tmp_path_factory.mktemp("tiny_clip")
    name = register_tiny_clip(directory)
    path = directory / "tiny.pt"
    make_calibrated_clip_checkpoint(path, name, seed=0)
    return name, path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    return write_test_images(tmp_path_factory.mktemp("imgs"), 9)


def _narratives() -> list[Narrative]:
    return [Narrative("coco", str(i), 0, c) for i, c in enumerate(CAPTIONS)]


def _mean_off_diagonal(x: np.ndarray) -> float:
    sim = x @ x.T
    return float(sim[~np.eye(len(x), dtype=bool)].mean())


def test_embeddings_normalized_and_not_collapsed(tiny, images) -> None:
    emb = ClipEmbedder(tiny[0], str(tiny[1]), progress=False)
    img = emb.image_embeddings(images)
    txt = emb.text_embeddings(_narratives())
    assert img.dtype == np.float32 and img.shape == (9, 32) and txt.embeddings.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(txt.embeddings, axis=1), 1.0, atol=1e-6)
    assert _mean_off_diagonal(img) < MAX_MEAN_OFF_DIAGONAL_COS
    assert _mean_off_diagonal(txt.embeddings) < MAX_MEAN_OFF_DIAGONAL_COS
    cross = img[:6] @ txt.embeddings.T
    assert (cross > 0).any() and (cross < 0).any()  # image-text cosines take both signs
    assert emb.identity.weights_sha256 and emb.identity.extra["text_policy"] == "utterances"
    assert "Resize(size=64, interpolation=bicubic" in emb.identity.preprocessing


def test_checkpoint_is_seeded_and_deterministic(tiny, tmp_path) -> None:
    again = make_calibrated_clip_checkpoint(tmp_path / "a.pt", tiny[0], seed=0)
    other = make_calibrated_clip_checkpoint(tmp_path / "c.pt", tiny[0], seed=1)
    assert again == sha256_file(str(tiny[1])) != other  # the fixture's file was made with seed 0


def test_warm_rerun_computes_no_forward_pass(tiny, images, tmp_path) -> None:
    renamed = tmp_path / "renamed"
    shutil.copytree(images[0].parent, renamed)
    with FeatureCache(tmp_path / "cache.sqlite") as cache:
        cold = ClipEmbedder(tiny[0], str(tiny[1]), cache=cache, progress=False)
        img = cold.image_embeddings(images)
        txt = cold.text_embeddings(_narratives()).embeddings
        assert cold.forward_batches["image"] >= 1 and cold.forward_batches["text"] >= 1
        warm = ClipEmbedder(tiny[0], str(tiny[1]), cache=cache, progress=False)
        np.testing.assert_array_equal(warm.image_embeddings(sorted(renamed.iterdir())), img)
        np.testing.assert_array_equal(warm.text_embeddings(_narratives()).embeddings, txt)
        assert warm.forward_batches == {"image": 0, "text": 0}
        other_policy = ClipEmbedder(
            tiny[0], str(tiny[1]), cache=cache, text_policy="truncate", progress=False
        )
        other_policy.image_embeddings(images)
        other_policy.text_embeddings(_narratives())
        assert other_policy.forward_batches == {"image": 0, "text": 1}  # images shared, texts keyed by policy


def test_batch_size_order_and_duplicates(tiny, images) -> None:
    one = ClipEmbedder(tiny[0], str(tiny[1]), batch_size=1, progress=False)
    many = ClipEmbedder(tiny[0], str(tiny[1]), batch_size=64, progress=False)
    reference = many.image_embeddings(images)
    np.testing.assert_allclose(one.image_embeddings(images), reference, atol=BATCH_INVARIANCE_ABS_TOL)
    order = np.random.default_rng(0).permutation(len(images))
    shuffled = many.image_embeddings([images[i] for i in order])
    np.testing.assert_allclose(shuffled, reference[order], atol=BATCH_INVARIANCE_ABS_TOL)
    np.testing.assert_allclose(
        one.text_embeddings(_narratives()).embeddings, many.text_embeddings(_narratives()).embeddings,
        atol=BATCH_INVARIANCE_ABS_TOL,
    )
    dup = ClipEmbedder(tiny[0], str(tiny[1]), progress=False)
    dup.image_embeddings([images[0]] * 5)
    assert dup.forward_batches["image"] == 1


def test_uncalibrated_weights_are_made_once_and_stamped(tiny, images) -> None:
    emb = ClipEmbedder(tiny[0], uncalibrated=True, seed=3, progress=False)
    path = uncalibrated_weights_path(tiny[0], 3)
    assert path.is_file() and emb.identity.uncalibrated and emb.identity.extra["pretrained"] == "uncalibrated"
    mtime = path.stat().st_mtime_ns
    again = ClipEmbedder(tiny[0], uncalibrated=True, seed=3, progress=False)
    assert path.stat().st_mtime_ns == mtime and again.identity == emb.identity
    result = compute_clip_score(
        [str(i) for i in range(6)], emb.image_embeddings(images[:6]),
        emb.text_embeddings(_narratives()).embeddings, extractor=emb.identity.to_dict(),
    )
    assert result.status == "uncalibrated"


def test_missing_weights_name_the_flags(tiny, monkeypatch) -> None:
    with pytest.raises(MissingWeightsError, match="neither a file nor a known tag") as err:
        ClipEmbedder(tiny[0], "/no/such/file.pt", progress=False)
    assert "--clip-pretrained PATH" in str(err.value) and "--uncalibrated-weights" in str(err.value)

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("network is unreachable")

    monkeypatch.setattr(open_clip, "download_pretrained", offline)
    monkeypatch.setattr(clip_weights, "host_resolves", lambda host: True)
    with pytest.raises(MissingWeightsError, match="cannot download CLIP weights ViT-B-32/openai") as err:
        ClipEmbedder("ViT-B-32", "openai", progress=False)
    assert "--clip-pretrained PATH" in str(err.value)
    # offline: fail fast from the Hugging Face cache instead of a minute of retries
    monkeypatch.setattr(clip_weights, "host_resolves", lambda host: False)
    with pytest.raises(MissingWeightsError, match="not in the local Hugging Face cache") as err:
        ClipEmbedder("ViT-B-32", "openai", progress=False)
    assert "--uncalibrated-weights" in str(err.value)


def test_bad_inputs(tiny, tmp_path) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'ViT-B-32'"):
        ClipEmbedder("ViT-B-23", "openai", progress=False)
    emb = ClipEmbedder(tiny[0], str(tiny[1]), progress=False)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"broken\.png") as err:
        emb.image_embeddings([broken])
    assert err.value.field == "image"
    with pytest.raises(InputError, match="not found"):
        emb.image_embeddings([tmp_path / "missing.png"])


def test_long_narrative_embedding_is_mean_of_chunk_embeddings(tiny) -> None:
    import torch

    caption = " ".join(f"On the left side there is a chair number {i} near a table." for i in range(12))
    narrative = Narrative("coco", "7", 0, caption)
    utter = ClipEmbedder(tiny[0], str(tiny[1]), progress=False)
    trunc = ClipEmbedder(tiny[0], str(tiny[1]), text_policy="truncate", progress=False)
    got_u = utter.text_embeddings([narrative])
    got_t = trunc.text_embeddings([narrative])
    chunks = utter.chunks(narrative).chunks
    assert got_u.n_chunks.tolist() == [len(chunks)] and len(chunks) >= 2
    assert (got_u.truncated_fraction, got_t.truncated_fraction) == (0.0, 1.0)
    assert got_u.over_length_fraction == got_t.over_length_fraction == 1.0

    model, _, _ = open_clip.create_model_and_transforms(tiny[0], pretrained=str(tiny[1]))
    model.eval()
    tokenizer = open_clip.get_tokenizer(tiny[0])
    with torch.no_grad():
        per_chunk = torch.nn.functional.normalize(model.encode_text(tokenizer(list(chunks))), dim=-1)
        truncated = torch.nn.functional.normalize(model.encode_text(tokenizer([caption])), dim=-1)
    expected = torch.nn.functional.normalize(per_chunk.mean(0, keepdim=True), dim=-1).numpy()
    np.testing.assert_allclose(got_u.embeddings, expected, atol=BATCH_INVARIANCE_ABS_TOL)
    np.testing.assert_allclose(got_t.embeddings, truncated.numpy(), atol=BATCH_INVARIANCE_ABS_TOL)
    assert float(got_u.embeddings[0] @ got_t.embeddings[0]) < 1.0 - 1e-4  # the policies differ here

"""Open_clip weights: resolve a pretrained tag or a local file, or make calibrated random weights.

Three sources, one loading path (:func:`load_clip_model`):

* a pretrained tag (``openai``, ``laion2b_s34b_b79k``, ...): open_clip downloads it on first use
  into its cache; without network this stops with :class:`MissingWeightsError` naming
  ``--clip-pretrained PATH`` and ``--uncalibrated-weights``;
* a local checkpoint PATH: loaded by open_clip's own ``load_checkpoint`` with
  ``weights_only=True`` (state dicts and third-party layouts are converted there; a pickle that
  asks for code is refused with a one-line error; OpenAI's TorchScript ``.pt`` is not accepted:
  its state dict would have to come from running the archive);
* the default tag's file is checked against a pinned sha256 (:data:`PINNED_SHA256`);
* ``--uncalibrated-weights``: :func:`make_calibrated_clip_checkpoint` writes a seeded random
  init to a file, which is then loaded as a PATH, exactly as a user's file would be.

Why calibrate: open_clip's random init nearly collapses the image tower (noise images reach
pairwise cosine 0.996) and puts every image-text cosine slightly below 0, so CLIPScore would be
0 for everything and tests would test nothing. Calibration fits, on seeded synthetic batches,
the bias of the final LayerNorm of each tower (``visual.ln_post``, ``ln_final``) so the mean
embedding of the batch is zero: embeddings of different inputs then spread over the sphere,
and image-text cosines take both signs. Numbers made this way are stamped UNCALIBRATED.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from trecs_eval.atomic import atomic_write
from trecs_eval.errors import ConfigError, InputError, MissingWeightsError, UnknownNameError, suggest
from trecs_eval.features.identity import sha256_file
from trecs_eval.features.weight_files import host_resolves

# Bump when the calibration changes (cached checkpoints are found by model, seed and version).
CALIBRATION_VERSION = 2
CALIBRATION_IMAGES = 18  # synthetic images for the calibration batch: 6 noise, 6 gradients, 6 blocks
CALIBRATION_TEXTS = 16  # random token sequences for the calibration batch
# sha256 of the file each pinned tag resolves to (open_clip prefers the safetensors file of the
# tag's Hugging Face repo). ViT-B-32/openai: timm/vit_base_patch32_clip_224.openai,
# open_clip_model.safetensors (revision a6f597a30f7b82c51704746581f9a4e41421e878).
PINNED_SHA256 = {
    ("ViT-B-32", "openai"): {
        "open_clip_model.safetensors": "e6d1bd7789aa45192b3bf90570a789b478bae1b74ebcce7eddd908e83a2b7c31",
        # OpenAI's own TorchScript archive; its URL carries this digest (OpenAI's convention)
        "ViT-B-32.pt": "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    },
}
NO_WEIGHTS_HINT = (
    "pass --clip-pretrained PATH (a local open_clip checkpoint file), or --uncalibrated-weights "
    "for seeded random weights (results are stamped UNCALIBRATED)"
)


def check_model_name(model: str) -> None:
    """Raise UnknownNameError (with did-you-mean) for a model open_clip has no config for."""
    import open_clip

    if model not in open_clip.list_models():
        raise UnknownNameError(f"unknown CLIP model {model!r}{suggest(model, open_clip.list_models())}")


def open_clip_constants() -> Any:
    """open_clip's constants module (CLIP's pixel mean/std), imported lazily."""
    from open_clip import constants

    return constants


def _synthetic_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3, size, size) float images in [0, 1]: a third noise, a third gradients, a third blocks."""
    images = torch.rand(n, 3, size, size, generator=generator)
    ramp = torch.linspace(0.0, 1.0, size)
    for i in range(n // 3, 2 * n // 3):
        colour = torch.rand(3, 1, 1, generator=generator)
        images[i] = colour * (ramp[None, :, None] if i % 2 else ramp[None, None, :])
    for i in range(2 * n // 3, n):
        blocks = torch.rand(3, 4, 4, generator=generator)
        images[i] = torch.nn.functional.interpolate(blocks[None], size=(size, size), mode="nearest")[0]
    return images


def _synthetic_tokens(n: int, context: int, vocab: int, generator: torch.Generator) -> torch.Tensor:
    """(n, context) token ids: start token, 3..context-2 random word pieces, end token, padding."""
    sot, eot = vocab - 2, vocab - 1  # CLIP's SimpleTokenizer puts <start>/<end> last
    tokens = torch.zeros(n, context, dtype=torch.long)
    lengths = torch.randint(3, context - 1, (n,), generator=generator)
    for i, length in enumerate(lengths.tolist()):
        tokens[i, 0] = sot
        tokens[i, 1 : length + 1] = torch.randint(0, vocab - 2, (length,), generator=generator)
        tokens[i, length + 1] = eot
    return tokens


def _centre_layernorm_bias(
    norm: torch.nn.LayerNorm, projection: torch.Tensor, mean_embedding: torch.Tensor
) -> None:
    """Shift the LayerNorm bias by delta with ``delta @ projection = mean_embedding`` (min-norm).

    Every pooled token moves by ``-delta``, so every embedding moves by ``-mean_embedding``.
    """
    delta = torch.linalg.pinv(projection.T.double()) @ mean_embedding.double()
    with torch.no_grad():
        norm.bias -= delta.to(norm.bias.dtype)


def calibrate_clip(model: Any, seed: int) -> None:
    """Centre both towers' embeddings on seeded synthetic batches (see the module docstring)."""
    visual = model.visual
    has_parts = all(hasattr(x, a) for x, a in ((visual, "ln_post"), (visual, "proj"), (model, "ln_final")))
    if not has_parts or not isinstance(getattr(model, "text_projection", None), torch.Tensor):
        raise ConfigError(
            f"uncalibrated weights are supported for ViT CLIP models only, not {type(model).__name__} "
            f"with {type(visual).__name__}; pass --clip-pretrained PATH instead"
        )
    generator = torch.Generator().manual_seed(seed + 1)
    size = visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size
    images = _synthetic_images(CALIBRATION_IMAGES, int(size), generator)
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    mean = torch.tensor(cfg.get("mean", open_clip_constants().OPENAI_DATASET_MEAN)).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", open_clip_constants().OPENAI_DATASET_STD)).view(1, 3, 1, 1)
    images = (images - mean) / std  # the network sees normalized pixels, as after open_clip's transform
    tokens = _synthetic_tokens(CALIBRATION_TEXTS, model.context_length, model.vocab_size, generator)
    model.eval()
    with torch.no_grad():
        _centre_layernorm_bias(visual.ln_post, visual.proj, model.encode_image(images).mean(0))
        _centre_layernorm_bias(model.ln_final, model.text_projection, model.encode_text(tokens).mean(0))


def make_calibrated_clip_checkpoint(
    path: str | os.PathLike[str], model: str = "ViT-B-32", seed: int = 0
) -> str:
    """Write a seeded, calibrated random open_clip state dict to ``path``; return its sha256.

    The same (model, seed) gives the same bytes. The file is written atomically (temporary file,
    then rename), so two processes making it at once never leave a half-written checkpoint.
    """
    import open_clip

    check_model_name(model)
    torch.manual_seed(seed)  # open_clip's init draws from the global generator
    clip = open_clip.create_model(model, pretrained=None)
    calibrate_clip(clip, seed)
    with atomic_write(path, "wb") as handle:  # a file object: the same bytes on every save
        torch.save(clip.state_dict(), handle)
    return sha256_file(str(path))


def _openai_style_quick_gelu(model: str, pretrained: str) -> bool:
    """True when the tag was trained with QuickGELU but the config uses GELU (ViT-B-32 + openai)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
    model_cfg = open_clip.get_model_config(model) or {}
    return bool(cfg.get("quick_gelu", False)) and not model_cfg.get("quick_gelu", False)


def _tag_preprocessing(model: str, tag: str) -> dict[str, Any]:
    """The image transform settings a pretrained tag declares (mean/std/interpolation/resize)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, tag) or {}
    names = {"mean": "image_mean", "std": "image_std", "interpolation": "image_interpolation",
             "resize_mode": "image_resize_mode"}
    return {arg: cfg[key] for key, arg in names.items() if key in cfg}


def _hf_cached_file(hub: str, what: str) -> str:
    """A tag's weights from the local Hugging Face cache only (no network), or MissingWeightsError."""
    from huggingface_hub import hf_hub_download
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    repo, filename = os.path.split(hub)  # open_clip's convention: "org/repo/" or "org/repo/file"
    for name in [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]:
        try:
            return str(hf_hub_download(repo, name, local_files_only=True))
        except Exception:  # any failure means "not cached"; the next name may be
            continue
    raise MissingWeightsError(
        f"no network (huggingface.co does not resolve) and CLIP weights {what} are not in the "
        "local Hugging Face cache", hint=NO_WEIGHTS_HINT,
    )


def resolve_tag(model: str, tag: str) -> str:
    """Local file of a pretrained tag: open_clip's download (cache first), failing fast offline."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, tag)
    hub = cfg.get("hf_hub", "")
    # Offline, huggingface_hub retries for about a minute before it looks in its cache.
    if hub and not host_resolves("huggingface.co"):
        return _hf_cached_file(hub, f"{model}/{tag}")
    try:
        return str(open_clip.download_pretrained(cfg))
    except Exception as err:  # urllib/HF hub raise many types; all mean "no weights here"
        raise MissingWeightsError(
            f"cannot download CLIP weights {model}/{tag} ({type(err).__name__}: {err})", hint=NO_WEIGHTS_HINT
        ) from err


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Model initialized randomly" not in record.getMessage()


@contextmanager
def _quiet_random_init_warning() -> Iterator[None]:
    """open_clip warns 'initialized randomly' for ``pretrained=None``; we load weights next."""
    root, drop = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def check_pinned_sha256(model: str, tag: str, weights_file: str) -> None:
    """A pinned tag's file must have its pinned sha256 (MissingWeightsError otherwise)."""
    pins = PINNED_SHA256.get((model, tag))
    if pins is None:
        return
    name = os.path.basename(weights_file)
    digest = sha256_file(weights_file)
    if pins.get(name) != digest:
        raise MissingWeightsError(
            f"CLIP weights {model}/{tag} at {weights_file} have sha256 {digest[:16]}..., "
            f"pinned: {', '.join(f'{k} {v[:16]}...' for k, v in pins.items())}",
            hint="delete the file to download it again, or pass --clip-pretrained PATH to use "
                 "this file as an unpinned checkpoint (its sha256 is recorded)")


def load_clip_model(model: str, pretrained: str, device: str) -> tuple[Any, Any, str, dict[str, Any]]:
    """``(model, preprocess, weights_file, details)`` for a tag or a local file (see module doc).

    ``weights_file`` is the checkpoint actually loaded (its sha256 goes into the identity);
    ``details`` records how (``source``: tag|file, ``quick_gelu``).
    """
    import open_clip

    check_model_name(model)
    is_file = os.path.isfile(pretrained)
    if not is_file and pretrained not in open_clip.list_pretrained_tags_by_model(model):
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise MissingWeightsError(
            f"CLIP weights {pretrained!r} for {model!r} are neither a file nor a known tag"
            f"{suggest(pretrained, tags) if tags else '; this model has no pretrained tags'}",
            hint=NO_WEIGHTS_HINT,
        )
    quick_gelu = False if is_file else _openai_style_quick_gelu(model, pretrained)
    weights_file = pretrained if is_file else resolve_tag(model, pretrained)
    if not is_file:
        check_pinned_sha256(model, pretrained, weights_file)
    # tags and files load the same way: from the resolved file, tag preprocessing passed on
    with _quiet_random_init_warning():  # the weights are loaded right below
        clip, _, preprocess = open_clip.create_model_and_transforms(
            model, pretrained=None, device=device, force_quick_gelu=quick_gelu,
            **({} if is_file else _tag_preprocessing(model, pretrained)),
        )
    try:  # weights_only=True: a checkpoint is tensors, never code
        open_clip.load_checkpoint(clip, weights_file, weights_only=True, device=device)
    except Exception as err:  # UnpicklingError, RuntimeError (shapes), KeyError, BadZipFile, ...
        detail = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        raise InputError(f"cannot load this CLIP checkpoint into {model!r}; only tensors may be "
                         f"unpickled ({detail})", path=str(weights_file), field="clip_pretrained") from err
    clip.eval()
    details = {"source": "file" if is_file else "tag", "quick_gelu": quick_gelu}
    return clip, preprocess, str(weights_file), details

"""Tiny random diffusion pipelines of the real diffusers/transformers classes, saved as local folders.

The tokenizer is a real ``CLIPTokenizer`` built from a vocabulary and merges file written here:
single characters plus whole-word merges for the words of ``WORDS`` (toyworld's vocabulary and the
test captions), so toyworld captions tokenize to a few tokens per word and long narratives do go
past the 77-token limit. Every model has a few thousand parameters; a 64 px image with 2 steps
takes well under a second on a CPU.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

TEXT_DIM = 16  # CLIP hidden size = UNet cross-attention dim (GLIGEN's phrase embeddings use it too)
WORDS = ("a", "an", "the", "in", "on", "of", "and", "with", "is", "there", "this", "image", "we", "can",
         "see", "at", "near", "above", "below", "left", "right", "top", "bottom", "sky", "grass", "sea",
         "dog", "cat", "car", "road", "tree", "person", "house", "cloud", "sun", "water", "sand", "field")


def _tokenizer_files(folder: Path) -> None:
    """``vocab.json`` and ``merges.txt`` for CLIP's byte-level BPE (printable ASCII + WORDS)."""
    chars = [c for c in string.printable if not c.isspace()]
    vocab: dict[str, int] = {}
    for token in [*chars, *(c + "</w>" for c in chars)]:
        vocab.setdefault(token, len(vocab))
    merges: list[str] = []
    for word in WORDS:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:  # merge left to right: every intermediate piece is a vocab entry
            merge = f"{pieces[0]} {pieces[1]}"
            if merge not in merges:
                merges.append(merge)
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            vocab.setdefault(pieces[0], len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def tiny_text_parts(folder: Path) -> tuple[object, object]:
    """(CLIPTokenizer, CLIPTextModel) of the test vocabulary, seeded."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    _tokenizer_files(folder / "_tok")
    tokenizer = CLIPTokenizer(str(folder / "_tok" / "vocab.json"), str(folder / "_tok" / "merges.txt"),
                              model_max_length=77)
    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=32,
                            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                            projection_dim=TEXT_DIM, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return tokenizer, CLIPTextModel(config).eval()


def tiny_unet(gligen: bool = False) -> object:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(1)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=TEXT_DIM,
        attention_head_dim=4, norm_num_groups=4, attention_type="gated" if gligen else "default")


def tiny_vae() -> object:
    """An AutoencoderKL with 4 blocks: the real SD latent downsampling (8x)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(2)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(4, 4, 4, 4),
                         down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=2, sample_size=64)


def build_tiny_xl_pipeline(folder: Path) -> Path:
    """A tiny ``StableDiffusionXLPipeline``: two text encoders (the second with a projection), a
    UNet with XL's added text/time embedding."""
    from diffusers import DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    tokenizer, text_encoder = tiny_text_parts(folder.parent / f".{folder.name}-build")
    torch.manual_seed(3)
    config = CLIPTextConfig(**{**text_encoder.config.to_dict(), "projection_dim": TEXT_DIM})
    text_encoder_2 = CLIPTextModelWithProjection(config).eval()
    torch.manual_seed(1)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=2 * TEXT_DIM,
        attention_head_dim=4, norm_num_groups=4, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=TEXT_DIM + 6 * 8)  # pooled text + 6 size/crop numbers
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, set_alpha_to_one=False)
    pipe = StableDiffusionXLPipeline(vae=tiny_vae(), text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
                                     scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_pipeline(folder: Path, kind: str = "sd") -> Path:
    """Save a tiny ``StableDiffusionPipeline`` (``kind="sd"``) or ``StableDiffusionGLIGENPipeline``
    (``"gligen"``: a UNet with gated self-attention and the box/phrase projection) to ``folder``."""
    from diffusers import DDIMScheduler, StableDiffusionGLIGENPipeline, StableDiffusionPipeline

    tokenizer, text_encoder = tiny_text_parts(folder.parent / f".{folder.name}-build")
    cls = StableDiffusionGLIGENPipeline if kind == "gligen" else StableDiffusionPipeline
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, set_alpha_to_one=False)
    pipe = cls(vae=tiny_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
               unet=tiny_unet(kind == "gligen"), scheduler=scheduler, safety_checker=None,
               feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


if __name__ == "__main__":  # python -m tests.diffusion_support OUT_DIR  (configs/toy_diffusion.toml)
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/tiny_models")
    for name, kind in (("tiny-sd", "sd"), ("tiny-gligen", "gligen")):
        print(build_tiny_pipeline(out / name, kind))

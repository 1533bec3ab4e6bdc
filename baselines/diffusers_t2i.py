"""``diffusers``: Stable Diffusion family text-to-image through the optional diffusers library.

Install with ``pip install 'trecs-eval[diffusers]'``. The model comes from ``model`` (a Hugging
Face id found in the local cache, or a local folder); nothing is downloaded unless
``allow_download = true``. Localized Narratives are often longer than the 77 tokens of the
CLIP text encoder, so the long-narrative policy is a *required* parameter, never implicit:

* ``truncate``: the whole caption; the tokenizer cuts it at 77 tokens (often mid-sentence).
* ``whole_utterances``: the longest prefix of whole utterances (``timed_caption``, or sentences
  when there are none) that fits in 77 tokens; never cuts inside an utterance.

How many prompts were cut is counted in :attr:`DiffusersGenerator.n_truncated`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from baselines._common import read_params
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import ConfigError, MissingWeightsError
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext, item_seed

TEXT_POLICIES = ("truncate", "whole_utterances")
CLIP_MAX_TOKENS = 77  # including the start and end tokens
_DEFAULTS: dict[str, Any] = {
    "model": None, "text_policy": None, "steps": 25, "guidance_scale": 7.5,
    "image_size": 0, "dtype": "float32", "allow_download": False,
}


def import_diffusers() -> Any:
    """The diffusers module, or a ConfigError naming the optional extra to install."""
    try:
        return importlib.import_module("diffusers")
    except ImportError:
        raise ConfigError("system 'diffusers' needs the diffusers library, which is not installed",
                          hint="pip install 'trecs-eval[diffusers]'") from None


class DiffusersGenerator:
    """Params: ``model`` and ``text_policy`` (required), ``steps``, ``guidance_scale``,
    ``image_size`` (0 = the model's native size), ``dtype``, ``allow_download``."""

    name: ClassVar[str] = "diffusers"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=False, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        p = read_params(self.name, params, _DEFAULTS, required=("model", "text_policy"),
                        choices={"text_policy": TEXT_POLICIES, "dtype": ("float32", "float16", "bfloat16")})
        self.p = p
        self.device = "cuda" if context.device == "cuda" else "cpu"
        diffusers = import_diffusers()
        import torch

        try:
            self.pipe = diffusers.AutoPipelineForText2Image.from_pretrained(
                p["model"], torch_dtype=getattr(torch, p["dtype"]), local_files_only=not p["allow_download"])
        except (OSError, ValueError) as err:
            raise MissingWeightsError(
                f"diffusers: cannot load model {p['model']!r} ({err})",
                hint="pass a local model folder as params.model, or set params.allow_download = true "
                     "on a machine with network access") from None
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.n_truncated = 0

    def prompt(self, item: EvalItem) -> str:
        """The prompt for ``item`` under the configured long-narrative policy."""
        tokenizer = self.pipe.tokenizer
        caption = item.narrative.caption
        fits = len(tokenizer(caption).input_ids) <= CLIP_MAX_TOKENS
        if not fits:
            self.n_truncated += 1
        if fits or self.p["text_policy"] == "truncate":
            return caption
        units = [u.utterance for u in item.narrative.timed_caption] or re.split(r"(?<=[.!?])\s+", caption)
        kept: list[str] = []
        for unit in units:
            if len(tokenizer(" ".join([*kept, unit])).input_ids) > CLIP_MAX_TOKENS:
                break
            kept.append(unit)
        return " ".join(kept)

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        import torch

        out = []
        size = self.p["image_size"] or None
        for it in items:
            rng = torch.Generator(self.device).manual_seed(item_seed(seed, it.item_id))
            image = self.pipe(self.prompt(it), num_inference_steps=self.p["steps"],
                              guidance_scale=self.p["guidance_scale"], generator=rng,
                              height=size, width=size).images[0]
            out.append(Generation(np.asarray(image.convert("RGB"), dtype=np.uint8)))
        return out

"""``diffusers``: Stable Diffusion family text-to-image (1.x, 2.x, XL) through the diffusers library.

Install with ``pip install 'trecs-eval[diffusers]'``. ``AutoPipelineForText2Image`` picks the
pipeline class from the folder's ``model_index.json`` (``StableDiffusionPipeline`` for 1.x/2.x,
``StableDiffusionXLPipeline`` for XL). Loading, dtype, scheduler, seeds and the long-narrative
prompt policies are those of :mod:`baselines._diffusion`; the policy is a *required* parameter,
never implicit. With ``batched = true`` a batch of items is one pipeline call (a list of prompts
and one generator per item: each item keeps its own latent), which is much faster on a GPU; but
float kernels may round differently at another batch size (on CPU, 1 of 4 tiny-model images
differed by one intensity level), so a resumed run could differ in the last bit from a clean one.
The default, ``batched = false``, calls the pipeline per item: bytes independent of batching and
of where a run was interrupted. What made the images (folder sha256, scheduler, steps, guidance,
dtype, seed and prompt policy, truncated prompts) is returned by
:meth:`DiffusersGenerator.describe` and written to ``results.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from baselines._common import read_params
from baselines._diffusion import (
    DTYPES,
    TEXT_POLICIES,
    describe_pipeline,
    import_diffusers,
    item_generators,
    load_pipeline,
    model_folder,
    prompt_for,
    resolve_dtype,
)
from trecs_eval.data.evalset import EvalItem
from trecs_eval.features.identity import folder_sha256
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext

DEFAULTS: dict[str, Any] = {
    "model": None, "text_policy": None, "steps": 25, "guidance_scale": 7.5, "image_size": 0,
    "dtype": "auto", "scheduler": "", "allow_download": False, "batched": False,
}
CHOICES: dict[str, tuple[Any, ...]] = {"text_policy": TEXT_POLICIES, "dtype": DTYPES}


class DiffusionBase:
    """Parameter reading, pipeline loading and :meth:`describe` shared by the diffusion systems."""

    name: ClassVar[str]
    version: ClassVar[str] = "2"

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext, defaults: Mapping[str, Any],
                 choices: Mapping[str, tuple[Any, ...]], loader_name: str) -> None:
        p = read_params(self.name, params, defaults, required=("model", "text_policy"), choices=choices)
        self.p = p
        self.device = "cuda" if context.device == "cuda" else "cpu"
        self.dtype = resolve_dtype(self.name, p["dtype"], self.device)
        # fp16 on CUDA and fp32 on CPU make other pixels from one config: part of the images' identity
        self.numeric_identity = {"device": self.device, "dtype": self.dtype}
        loader = getattr(import_diffusers(), loader_name)
        self.pipe = load_pipeline(self.name, loader, p["model"], self.dtype, p["allow_download"], self.device,
                                  p["scheduler"])
        self._folder_hash: str | None = None

    def prompt(self, item: EvalItem) -> str:
        """The prompt for ``item`` under the configured long-narrative policy."""
        return prompt_for(self.pipe.tokenizer, item, self.p["text_policy"])[0]

    def size_kwargs(self) -> dict[str, int | None]:
        size = self.p["image_size"] or None
        return {"height": size, "width": size}

    def describe(self, items: Sequence[EvalItem]) -> dict[str, Any]:
        """Provenance for ``results.json`` (folder hashed once, on first call)."""
        if self._folder_hash is None:
            folder = model_folder(self.p["model"])
            self._folder_hash = folder_sha256(folder) if folder is not None else ""
        return describe_pipeline(self.pipe, self.p["model"], self._folder_hash or None, self.p, self.dtype,
                                 items)


def to_generations(images: Sequence[Any]) -> list[Generation]:
    return [Generation(np.asarray(image.convert("RGB"), dtype=np.uint8)) for image in images]


class DiffusersGenerator(DiffusionBase):
    """Params: ``model`` and ``text_policy`` (required), ``steps``, ``guidance_scale``,
    ``image_size`` (0 = the model's native size), ``dtype``, ``scheduler``, ``allow_download``,
    ``batched``."""

    name: ClassVar[str] = "diffusers"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=False, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        super().__init__(params, context, DEFAULTS, CHOICES, "AutoPipelineForText2Image")

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        groups = [list(items)] if self.p["batched"] else [[it] for it in items]
        images = []
        for group in groups:
            out = self.pipe([self.prompt(it) for it in group], num_inference_steps=self.p["steps"],
                            guidance_scale=self.p["guidance_scale"],
                            generator=item_generators(group, seed, self.device), **self.size_kwargs())
            images.extend(out.images)
        return to_generations(images)

    def describe(self, items: Sequence[EvalItem]) -> dict[str, Any]:
        return {**super().describe(items), "batched": self.p["batched"]}

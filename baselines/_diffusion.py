"""What the diffusion systems (``diffusers``, ``gligen``) share: loading a pipeline from a local
folder, dtype and scheduler choice, the long-narrative prompt policies, per-item generators and
the provenance they record (:func:`describe_pipeline`).

* **Model.** ``model`` is a local pipeline folder (``model_index.json`` + component folders, as
  ``save_pretrained`` writes it) or a Hugging Face id already in the local cache; loading uses
  ``local_files_only`` unless ``allow_download = true``. The folder is fingerprinted
  (:func:`trecs_eval.features.identity.folder_sha256`) so results say exactly which weights made the images.
* **dtype.** ``"auto"`` = ``float16`` on CUDA, ``float32`` on CPU (half precision on a CPU is slow
  and some kernels lack it, so ``float16`` on CPU is refused).
* **Scheduler.** ``""`` keeps the folder's scheduler; otherwise the name of a diffusers scheduler
  class (e.g. ``DPMSolverMultistepScheduler``) built ``from_config`` of the folder's one.
* **Seeds.** Item ``i`` draws its initial latent from ``torch.Generator(device).manual_seed(
  item_seed(run_seed, item_id))``: same seed, same bytes; each item has its own generator, so a
  batch gives each item the latent it would get alone.
* **Prompt policy** (CLIP's 77 tokens, start and end included): ``truncate`` passes the whole
  caption (the tokenizer cuts it); ``whole_utterances`` keeps the longest prefix of whole utterances
  (``timed_caption``, or sentences) that fits, and falls back to the cut caption when even the first
  utterance is too long. An item counts as *truncated* when its caption exceeds 77 tokens.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import ConfigError, InputError, MissingWeightsError, TrecsEvalError

TEXT_POLICIES = ("truncate", "whole_utterances")
DTYPES = ("auto", "float32", "float16", "bfloat16")
CLIP_MAX_TOKENS = 77  # including the start and end tokens
SEED_POLICY = "per item: torch.Generator(device).manual_seed(item_seed(run seed, item_id))"


def import_diffusers() -> Any:
    """The diffusers module, or a ConfigError naming the optional extra to install."""
    try:
        return importlib.import_module("diffusers")
    except ImportError:
        raise ConfigError("the diffusion systems need the diffusers library, which is not installed",
                          hint="pip install 'trecs-eval[diffusers]'") from None


def resolve_dtype(system: str, name: str, device: str) -> str:
    """The torch dtype name for ``name`` on ``device`` (see the module doc)."""
    if name == "auto":
        return "float16" if device == "cuda" else "float32"
    if name == "float16" and device != "cuda":
        raise ConfigError(f"{system}: dtype 'float16' needs a CUDA device (this run uses {device})",
                          hint="use dtype = \"auto\" (float32 on CPU) or \"float32\"")
    return name


def load_pipeline(system: str, loader: Any, model: str, dtype: str, allow_download: bool, device: str,
                  scheduler: str) -> Any:
    """``loader.from_pretrained(model, ...)`` on ``device`` with the progress bar off; a model that
    cannot be loaded is a MissingWeightsError naming what to pass."""
    import torch

    diffusers = import_diffusers()
    if hasattr(diffusers, "utils"):  # loading bars would break the run's one progress bar
        diffusers.utils.logging.disable_progress_bar()
        importlib.import_module("transformers").utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():  # diffusers >= 0.36 renames torch_dtype; older ones need it
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = loader.from_pretrained(model, torch_dtype=getattr(torch, dtype),
                                          local_files_only=not allow_download)
    except Exception as err:  # the loaders raise many types for a user's folder; each is one line
        raise load_failure(system, model, err) from None
    if scheduler:
        cls = getattr(diffusers, scheduler, None)
        if cls is None or not hasattr(cls, "from_config") or not scheduler.endswith("Scheduler"):
            names = [n for n in dir(diffusers) if n.endswith("Scheduler")]
            from trecs_eval.errors import suggest

            raise ConfigError(f"{system}: unknown scheduler {scheduler!r}{suggest(scheduler, names)}")
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def load_failure(system: str, model: str, err: Exception) -> TrecsEvalError:
    """One line for a model that did not load: the pickled weight file torch refused (it asks to
    run code, or is damaged: nothing in it ran), a missing model, or the loader's first line."""
    folder = model_folder(model)
    culprit = refused_pickle(folder) if folder is not None else None
    if culprit is not None:
        path, reason = culprit
        return InputError(f"{system}: not a weights-only torch file ({reason}); it may ask to run code, "
                          "and nothing in it was run", str(path),
                          hint="use a model folder saved with safetensors weights")
    if isinstance(err, (OSError, ValueError)):
        return MissingWeightsError(
            f"{system}: cannot load model {model!r} ({_first_line(err)})",
            hint="pass a local pipeline folder as params.model (see docs/systems.md), or set "
                 "params.allow_download = true on a machine with network access")
    return ConfigError(f"{system}: cannot load model {model!r} ({type(err).__name__}: {_first_line(err)})")


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def refused_pickle(folder: Path) -> tuple[Path, str] | None:
    """The first pickled weight file under ``folder`` that ``torch.load(weights_only=True)`` refuses,
    with torch's reason (its last non-empty line), or None."""
    import torch

    for path in sorted(p for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES and p.is_file()):
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError, RuntimeError, EOFError, ...: all mean "refused"
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            reasons = [line for line in lines if "unsupported" in line.lower() or "error" in line.lower()]
            return path, (reasons or lines or [type(err).__name__])[-1][:200]
    return None


def model_folder(model: str) -> Path | None:
    """The folder holding ``model``: itself when it is a folder, else its snapshot in the local
    Hugging Face cache (None when neither exists)."""
    if Path(model).is_dir():
        return Path(model)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:
        return None


def n_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` with start and end, uncut (no warning for long ones: counting is the point)."""
    return len(tokenizer(text, verbose=False).input_ids)


def fit_words(tokenizer: Any, text: str) -> str:
    """``text`` without its last words until it fits in ``CLIP_MAX_TOKENS`` (GLIGEN tokenizes its
    phrases uncut: a longer phrase would overflow the text encoder's positions)."""
    words = text.split()
    while len(words) > 1 and n_tokens(tokenizer, " ".join(words)) > CLIP_MAX_TOKENS:
        words.pop()
    return " ".join(words)


def prompt_for(tokenizer: Any, item: EvalItem, policy: str) -> tuple[str, bool]:
    """(prompt, truncated) for ``item`` under ``policy`` (see the module doc)."""
    caption = item.narrative.caption
    if n_tokens(tokenizer, caption) <= CLIP_MAX_TOKENS:
        return caption, False
    if policy == "truncate":
        return caption, True
    units = [u.utterance for u in item.narrative.timed_caption] or re.split(r"(?<=[.!?])\s+", caption)
    kept: list[str] = []
    for unit in units:
        if n_tokens(tokenizer, " ".join([*kept, unit])) > CLIP_MAX_TOKENS:
            break
        kept.append(unit)
    return (" ".join(kept) if kept else caption), True


def item_generators(items: Sequence[EvalItem], seed: int, device: str) -> list[Any]:
    """One seeded torch.Generator per item (:data:`SEED_POLICY`)."""
    import torch

    from trecs_eval.generation.protocol import item_seed

    return [torch.Generator(device).manual_seed(item_seed(seed, it.item_id)) for it in items]


def describe_pipeline(pipe: Any, model: str, folder_hash: str | None, p: dict[str, Any], dtype: str,
                      items: Sequence[EvalItem]) -> dict[str, Any]:
    """The provenance every diffusion system records in ``results.json`` (``systems[].generation``)."""
    truncated = sum(prompt_for(pipe.tokenizer, it, p["text_policy"])[1] for it in items)
    return {
        "pipeline": type(pipe).__name__,
        "model": os.fspath(model),
        "model_sha256": folder_hash,
        "scheduler": type(pipe.scheduler).__name__,
        "steps": p["steps"],
        "guidance_scale": p["guidance_scale"],
        "dtype": dtype,
        "seed_policy": SEED_POLICY,
        "prompt_policy": p["text_policy"],
        "max_prompt_tokens": CLIP_MAX_TOKENS,
        "n_truncated_prompts": int(truncated),
        "n_items": len(items),
    }

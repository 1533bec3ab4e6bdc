"""One entry point to train, save and load every tagger kind."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from reference_pipeline.tag.base import SerializableTagger, Tagger, check_training_data
from trecs_eval.atomic import write_bytes
from trecs_eval.errors import InputError, UnknownNameError, suggest

TaggerKind = Literal["hmm", "neural", "majority", "word-majority", "fill"]
TAGGER_KINDS: tuple[str, ...] = get_args(TaggerKind)
CHECKPOINT_FORMAT = "trecs-eval-tagger"
CHECKPOINT_VERSION = 1


def _check_kind(kind: str) -> None:
    if kind not in TAGGER_KINDS:
        raise UnknownNameError(f"unknown tagger kind {kind!r}{suggest(kind, TAGGER_KINDS)}")


def train_tagger(
    kind: TaggerKind,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    *,
    seed: int = 0,
    label_bags: Sequence[Collection[str]] | None = None,
    progress: bool = False,
    transition_power: float = 10.0,
    ibm1_iterations: int = 10,
    use_tfidf: bool = True,
    emission_counts: Literal["ibm1", "gold"] = "ibm1",
    min_count: int = 3,
    min_share: float = 0.6,
    prefer: Literal["next", "previous"] = "next",
    neural_config: Any | None = None,
) -> Tagger:
    """Trains a tagger of ``kind`` on parallel word/tag sequences (one per narrative).

    Options by kind (others are ignored):
      * ``hmm``: ``label_bags`` (image label bag per narrative for IBM Model 1; default each
        narrative's own gold tag set), ``transition_power`` (exponent on transitions, paper: 10),
        ``ibm1_iterations`` (EM steps), ``use_tfidf`` (alpha weights; False = all 1),
        ``emission_counts`` ("ibm1" as the paper, "gold" = supervised counts).
      * ``fill``: ``min_count`` (occurrences for a word to be trusted), ``min_share`` (share of its
        top label), ``prefer`` (side that wins at equal distance).
      * ``neural``: ``seed`` (weights and batch order) and ``neural_config``
        (:class:`reference_pipeline.tag.neural.NeuralConfig`, default settings when None).
    Deterministic: the same data and seed give the same tagger.
    """
    _check_kind(kind)
    check_training_data(words, tags)
    if label_bags is not None and len(label_bags) != len(words):
        raise InputError(f"{len(label_bags)} label bags for {len(words)} narratives", field="label_bags")
    if kind == "hmm":
        from reference_pipeline.tag.hmm import train_hmm

        return train_hmm(words, tags, label_bags=label_bags, transition_power=transition_power,
                         ibm1_iterations=ibm1_iterations, use_tfidf=use_tfidf,
                         emission_counts=emission_counts, progress=progress)
    if kind == "neural":
        from reference_pipeline.tag.neural import NeuralConfig, train_neural

        return train_neural(words, tags, seed=seed, config=neural_config or NeuralConfig(), progress=progress)
    from reference_pipeline.tag.baselines import train_baseline

    return train_baseline(kind, words, tags, min_count=min_count, min_share=min_share, prefer=prefer)


def _tagger_classes() -> dict[str, Any]:
    from reference_pipeline.tag.baselines import FillTagger, MajorityTagger, WordMajorityTagger
    from reference_pipeline.tag.hmm import HMMTagger
    from reference_pipeline.tag.neural import NeuralTagger

    classes = (MajorityTagger, WordMajorityTagger, FillTagger, HMMTagger, NeuralTagger)
    return {cls.name: cls for cls in classes}


def save_tagger(tagger: SerializableTagger, path: str | os.PathLike[str]) -> Path:
    """Writes ``{format, version, kind, state}`` with torch.save (plain types and tensors only,
    so :func:`load_tagger` can use ``weights_only=True``); atomic (temp file + rename)."""
    path = Path(path)
    _check_kind(tagger.name)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": tagger.name,
               "state": tagger.state_dict()}
    import torch  # lazy: the CLI parser imports this module; torch costs seconds

    # a buffer, not a path: torch.save names the archive after its file, so a temp path would make
    # the checkpoint bytes differ on every save
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())
    return path


def load_tagger(path: str | os.PathLike[str]) -> Tagger:
    """Reads a checkpoint written by :func:`save_tagger` (``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("tagger checkpoint not found", path=str(path))
    try:
        import torch

        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise InputError(f"not a readable tagger checkpoint ({type(err).__name__}: {str(err)[:200]})",
                         path=str(path)) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"not a trecs-eval tagger checkpoint (format field must be {CHECKPOINT_FORMAT!r})",
                         path=str(path), field="format")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"checkpoint version {payload.get('version')!r}; this code reads "
                         f"{CHECKPOINT_VERSION}",
                         path=str(path), field="version")
    kind = payload.get("kind")
    classes = _tagger_classes()
    if kind not in classes:
        raise InputError(f"unknown tagger kind {kind!r}{suggest(str(kind), classes)}", path=str(path),
                         field="kind")
    try:
        return classes[kind].from_state(payload["state"])
    except (KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{kind} checkpoint is incomplete or malformed ({err!r})", path=str(path),
                         field="state") from err

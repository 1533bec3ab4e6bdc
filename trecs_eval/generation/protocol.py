"""The Generator plug-in protocol: what every system (baseline, TReCS, third-party model) implements.

A generator is built from its parameters and a :class:`GeneratorContext`, declares its
:class:`Capabilities`, and turns a batch of :class:`~trecs_eval.data.evalset.EvalItem` into one
:class:`Generation` per item. Register with ``@GENERATORS.register("name")`` or through the
``trecs_eval.generators`` entry-point group (value ``"package.module:Class"``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from trecs_eval.data.evalset import EvalItem
from trecs_eval.registry import Registry


@dataclass(frozen=True)
class Capabilities:
    """What a generator does: reads traces, returns a label canvas, same output for same seed."""

    uses_traces: bool = False
    returns_canvas: bool = False
    deterministic: bool = True


@dataclass
class Generation:
    """One generated item: an H×W×3 uint8 RGB image, optionally an H×W uint8 COCO-Stuff label canvas
    and an H×W int32 instance map."""

    image: np.ndarray
    canvas: np.ndarray | None = None
    instances: np.ndarray | None = None


@dataclass(frozen=True)
class GeneratorContext:
    """What a generator may need beyond its own parameters.

    ``train_dir`` is a folder in toyworld layout (``narratives.jsonl``, ``images/``,
    ``annotations.json``, ``sequence_labels/``) used as retrieval/mask bank and tagger training
    data; ``work_dir`` is where a generator may cache what it builds (banks, trained taggers).
    """

    device: str = "cpu"
    work_dir: Path | None = None
    train_dir: Path | None = None
    image_size: int = 256


@runtime_checkable
class Generator(Protocol):
    """A text(+trace)-to-image system under evaluation."""

    name: ClassVar[str]
    version: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        """One Generation per item, in order. Randomness must come from :func:`item_seed`
        so that the output of an item does not depend on how items are batched."""
        ...


class GeneratorFactory(Protocol):
    def __call__(self, params: Mapping[str, Any], context: GeneratorContext) -> Generator: ...


GENERATORS: Registry[GeneratorFactory] = Registry("system", "trecs_eval.generators")


def item_seed(seed: int, item_id: str) -> int:
    """A per-item seed from the run seed and the item id (stable across batching and order)."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)

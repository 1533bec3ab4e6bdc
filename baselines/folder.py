"""``folder``: precomputed images, one file per item named ``{image_id}_{annotator_id}.png``.

This is how the released TReCS images, AttnGAN or XMC-GAN outputs come in. Before generation
:meth:`FolderGenerator.check_items` inventories the folder: missing, unreadable and wrongly
sized files make an item missing (the run then stops or evaluates the intersection, as
``on_missing`` says); extra files (not in the evaluation set) are listed in the notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from baselines._common import load_rgb, read_params
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import ConfigError, InputError
from trecs_eval.features.decode import open_image
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext
from trecs_eval.generation.runner import ItemCheck

_SHOWN = 5  # how many ids a note lists before "..."


class FolderGenerator:
    """Params: ``path`` (required), ``extension`` (default ``png``), ``image_size`` (the expected
    width and height; default the run's), ``resize`` (resize other sizes instead of rejecting)."""

    name: ClassVar[str] = "folder"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities(uses_traces=False, returns_canvas=False)

    def __init__(self, params: Mapping[str, Any], context: GeneratorContext) -> None:
        p = read_params(self.name, params, {"path": None, "extension": "png",
                                            "image_size": context.image_size, "resize": False},
                        required=("path",))
        if not isinstance(p["path"], str):
            raise ConfigError(f"folder: parameter 'path' must be a string, got {p['path']!r}")
        self.folder = Path(p["path"])
        if not self.folder.is_dir():
            raise ConfigError(f"folder: {self.folder} is not a directory")
        self.extension: str = p["extension"].lstrip(".")
        self.size: int = p["image_size"]
        self.resize: bool = p["resize"]

    def _file(self, item_id: str) -> Path:
        return self.folder / f"{item_id}.{self.extension}"

    def check_items(self, items: Sequence[EvalItem]) -> ItemCheck:
        """Which items have a readable file of the expected size; notes list every problem."""
        absent, unreadable, wrong_size = [], [], []
        for it in items:
            path = self._file(it.item_id)
            if not path.is_file():
                absent.append(it.item_id)
                continue
            try:
                with open_image(path) as img:
                    img.load()  # decode fully: a truncated file (or a decompression bomb) fails here
                    size = img.size
            except InputError:
                unreadable.append(it.item_id)
                continue
            if size != (self.size, self.size) and not self.resize:
                wrong_size.append(f"{it.item_id} ({size[0]}x{size[1]})")
        wanted = {it.item_id for it in items}
        extra = sorted(p.name for p in self.folder.glob(f"*.{self.extension}") if p.stem not in wanted)
        notes = [
            _note(f"missing file(s) in {self.folder}", absent),
            _note("unreadable file(s)", unreadable),
            _note(f"file(s) not {self.size}x{self.size}", wrong_size),
            _note("extra file(s) not in the evaluation set (ignored)", extra),
        ]
        missing = absent + unreadable + [w.split(" ")[0] for w in wrong_size]
        return ItemCheck(missing=tuple(missing), notes=tuple(n for n in notes if n))

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        out = []
        for it in items:
            path = self._file(it.item_id)
            if not path.is_file():
                raise InputError("no precomputed image for this item", path=str(path))
            image = load_rgb(path, self.size if self.resize else None)
            if image.shape[:2] != (self.size, self.size):
                raise InputError(f"image is {image.shape[1]}x{image.shape[0]}, expected "
                                 f"{self.size}x{self.size}", path=str(path))
            out.append(Generation(np.ascontiguousarray(image)))
        return out


def _note(what: str, ids: list[str]) -> str:
    if not ids:
        return ""
    shown = ", ".join(ids[:_SHOWN]) + (", ..." if len(ids) > _SHOWN else "")
    return f"{len(ids)} {what}: {shown}"

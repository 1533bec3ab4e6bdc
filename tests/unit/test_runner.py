"""The resumable generation runner: files, atomicity, provenance, resume, batching invariance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from baselines.noise import NoiseGenerator
from tests.harness_fixtures import make_items
from trecs_eval.data.evalset import EvalItem
from trecs_eval.errors import TrecsEvalError
from trecs_eval.generation.protocol import Capabilities, Generation, GeneratorContext, item_seed
from trecs_eval.generation.runner import (
    canvas_path,
    generate_system,
    image_path,
    instances_path,
    read_provenance,
)


class CountingCanvasGenerator:
    """Returns a canvas and instances; counts how many items it was asked for."""

    name: ClassVar[str] = "counting"
    version: ClassVar[str] = "3"
    capabilities: ClassVar[Capabilities] = Capabilities(returns_canvas=True)

    def __init__(self, fail_after: int | None = None, bad: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_after = fail_after
        self.bad = bad

    def generate(self, items: Sequence[EvalItem], seed: int) -> list[Generation]:
        out = []
        for it in items:
            if self.fail_after is not None and len(self.calls) >= self.fail_after:
                raise RuntimeError("generator crashed")
            self.calls.append(it.item_id)
            value = item_seed(seed, it.item_id) % 200
            canvas = np.full((8, 8), value, dtype=np.uint8)
            instances = np.arange(64, dtype=np.int32).reshape(8, 8) * 1000
            image = np.full((8, 8, 3), value, dtype=np.uint8)
            out.append(Generation(image.astype(np.float32) if self.bad == "float" else image,
                                  None if self.bad == "no-canvas" else canvas, instances))
        return out


def test_writes_images_canvases_instances_and_provenance(tmp_path):
    items = make_items(5)
    gen = CountingCanvasGenerator()
    out = generate_system(tmp_path, "sys", gen, items, seed=4, batch_size=2, progress=False)
    assert out.generated == 5 and out.reused == 0
    for it in items:
        value = item_seed(4, it.item_id) % 200
        assert (np.asarray(Image.open(image_path(tmp_path, "sys", it.item_id))) == value).all()
        assert (np.asarray(Image.open(canvas_path(tmp_path, "sys", it.item_id))) == value).all()
        instances = np.asarray(Image.open(instances_path(tmp_path, "sys", it.item_id)))
        assert instances.max() == 63000  # uint16: ids above 255 survive
    records = read_provenance(tmp_path, "sys")
    assert [r["item_id"] for r in records] == [it.item_id for it in items]
    assert records[0]["version"] == "3" and records[0]["seed"] == 4
    assert records[0]["item_seed"] == item_seed(4, items[0].item_id)
    assert not list(tmp_path.rglob("*.tmp"))


def test_resume_never_generates_an_item_twice(tmp_path):
    items = make_items(7)
    crashing = CountingCanvasGenerator(fail_after=3)
    with pytest.raises(RuntimeError):
        generate_system(tmp_path, "sys", crashing, items, seed=0, batch_size=2, progress=False)
    done = {p.stem for p in (tmp_path / "images" / "sys").glob("*.png")}
    assert done == {"img000_1", "img001_1"}  # the batch that crashed left nothing behind
    # a temp file left by a kill mid-write is removed, not mistaken for an image
    (tmp_path / "images" / "sys" / ".img002_1.abc.tmp").write_bytes(b"partial")
    second = CountingCanvasGenerator()
    out = generate_system(tmp_path, "sys", second, items, seed=0, batch_size=2, progress=False)
    assert sorted(second.calls) == sorted(it.item_id for it in items if it.item_id not in done)
    assert out.reused == 2 and out.generated == 5
    assert len(read_provenance(tmp_path, "sys")) == 7
    third = CountingCanvasGenerator()
    generate_system(tmp_path, "sys", third, items, seed=0, progress=False)
    assert third.calls == []
    assert not list(tmp_path.rglob("*.tmp"))


def test_images_do_not_depend_on_batch_size(tmp_path):
    items = make_items(5)
    for batch_size in (1, 4):
        noise = NoiseGenerator({}, GeneratorContext(image_size=16))
        generate_system(tmp_path / str(batch_size), "noise", noise, items, seed=1, batch_size=batch_size,
                        progress=False)
    for it in items:
        a = image_path(tmp_path / "1", "noise", it.item_id).read_bytes()
        assert a == image_path(tmp_path / "4", "noise", it.item_id).read_bytes()


@pytest.mark.parametrize(("bad", "message"), [
    ("float", "image must be an H×W×3 uint8 array"),
    ("no-canvas", "declares returns_canvas but returned no canvas"),
])
def test_malformed_output_fails_loudly_naming_system_and_item(tmp_path, bad, message):
    with pytest.raises(TrecsEvalError, match=f"system 'sys', item img000_1: {message}"):
        generate_system(tmp_path, "sys", CountingCanvasGenerator(bad=bad), make_items(2), seed=0,
                        progress=False)
    assert not (tmp_path / "images" / "sys" / "img000_1.png").exists()


def test_torn_provenance_line_is_skipped(tmp_path):
    generate_system(tmp_path, "sys", CountingCanvasGenerator(), make_items(2), seed=0, progress=False)
    path = tmp_path / "provenance" / "sys.jsonl"
    path.write_text(path.read_text() + '{"item_id": "img0', encoding="utf-8")
    assert len(read_provenance(tmp_path, "sys")) == 2

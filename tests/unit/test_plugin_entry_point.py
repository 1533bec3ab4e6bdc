"""A third-party generator found through the ``trecs_eval.generators`` entry point group.

The plug-in package is made in tmp_path (a module plus a ``*.dist-info`` with
``entry_points.txt``) and put on ``sys.path``, as ``pip install`` would; nothing in this
repository names it.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
from PIL import Image

from tests.harness_fixtures import make_items
from trecs_eval.errors import UnknownNameError
from trecs_eval.generation.protocol import GENERATORS, Generator, GeneratorContext
from trecs_eval.generation.runner import generate_system, image_path
from trecs_eval.registry import Registry

PLUGIN_MODULE = '''
import numpy as np
from trecs_eval.generation.protocol import Capabilities, Generation


class GreenGenerator:
    name = "green-world"
    version = "0.1"
    capabilities = Capabilities()

    def __init__(self, params, context):
        self.size = context.image_size

    def generate(self, items, seed):
        image = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        image[..., 1] = 255
        return [Generation(image.copy()) for _ in items]
'''


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "green_plugin").mkdir(parents=True)
    (site / "green_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist = site / "green_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: green-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[trecs_eval.generators]\ngreen-world = green_plugin:GreenGenerator\n")
    monkeypatch.syspath_prepend(str(site))
    # the shared registry reads entry points once per process; read them again for this test
    monkeypatch.setattr(GENERATORS, "_entry_points_loaded", False)
    monkeypatch.setattr(GENERATORS, "_items", dict(GENERATORS._items))
    return site


def test_registry_finds_the_plugin_and_the_runner_runs_it(plugin_on_path, tmp_path):
    assert "green-world" in GENERATORS.names()
    factory = GENERATORS.get("green-world")
    generator = factory({}, GeneratorContext(image_size=8))
    assert isinstance(generator, Generator)
    items = make_items(2)
    generate_system(tmp_path / "run", "green", generator, items, seed=0, progress=False)
    pixels = np.asarray(Image.open(image_path(tmp_path / "run", "green", "img001_1")))
    assert (pixels == [0, 255, 0]).all()


def test_unknown_names_suggest_the_plugin(plugin_on_path):
    expected = re.escape("unknown system 'green-wrld' (did you mean 'green-world'?)")
    with pytest.raises(UnknownNameError, match=expected):
        GENERATORS.get("green-wrld")


def test_a_fresh_registry_finds_the_plugin_through_its_entry_point_alone(plugin_on_path):
    """Nothing registers the plug-in by hand: a brand-new registry of the group must find it
    through the dist-info's entry point, import it lazily, and another group must not see it."""
    registry: Registry[object] = Registry("system", "trecs_eval.generators")
    assert "green-world" in registry.names()
    assert registry.get("green-world").__module__ == "green_plugin"
    other: Registry[object] = Registry("metric", "trecs_eval.some_other_group")
    assert "green-world" not in other.names()

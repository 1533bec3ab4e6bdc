"""Whatever changes numbers is in the identity: a generator's resolved device and dtype are in its
images' provenance and a resume on another device is refused naming both; an extractor on a GPU
has another cache identity than on the CPU. All on the CPU: the CUDA resolution is simulated by
patching the device resolver (the models themselves are never moved to a GPU).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

from tests.harness_fixtures import make_items
from trecs_eval.config import RunConfig
from trecs_eval.errors import ConfigError
from trecs_eval.generation.protocol import Capabilities, Generation
from trecs_eval.generation.runner import check_numeric_identity, generate_system, read_provenance


class _Flat:
    """A generator whose pixels would depend on its device and dtype (as a diffusion pipeline's)."""

    name: ClassVar[str] = "flat"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, device: str, dtype: str) -> None:
        self.numeric_identity = {"device": device, "dtype": dtype}

    def generate(self, items, seed):
        return [Generation(np.full((8, 8, 3), 100, dtype=np.uint8)) for _ in items]


def test_provenance_records_device_and_dtype_and_another_device_is_refused_naming_both(tmp_path):
    items = make_items(4)
    generate_system(tmp_path, "diff", _Flat("cuda", "float16"), items[:2], seed=0, progress=False)
    assert {r["numeric"]["dtype"] for r in read_provenance(tmp_path, "diff")} == {"float16"}
    check_numeric_identity(tmp_path, "diff", _Flat("cuda", "float16"))  # same device: resumes
    with pytest.raises(ConfigError) as found:
        check_numeric_identity(tmp_path, "diff", _Flat("cpu", "float32"))
    message = str(found.value)
    assert "device cuda, dtype float16" in message and "device cpu, dtype float32" in message
    assert "\n" not in message.split("hint")[0].strip()


def _diffusion_generator(monkeypatch, resolved: str):
    """A DiffusersGenerator built through the harness's context with the resolver answering
    ``resolved`` (pipeline loading stubbed: nothing runs on a GPU)."""
    import baselines.diffusers_t2i as t2i
    from trecs_eval import harness

    monkeypatch.setattr(harness, "resolve_device", lambda device: resolved)
    monkeypatch.setattr(t2i, "import_diffusers", lambda: SimpleNamespace(AutoPipelineForText2Image=object))
    monkeypatch.setattr(t2i, "load_pipeline", lambda *args, **kwargs: SimpleNamespace())
    config = RunConfig(name="t", out_dir=Path("runs/t"))
    context = harness.generator_context(config, config.out_dir)
    params = {"model": "some/model", "dtype": "auto", "text_policy": "truncate"}
    return t2i.DiffusersGenerator(params, context)


def test_auto_dtype_resolves_per_device_and_enters_the_generation_identity(monkeypatch):
    on_gpu = _diffusion_generator(monkeypatch, "cuda")
    assert on_gpu.numeric_identity == {"device": "cuda", "dtype": "float16"}
    on_cpu = _diffusion_generator(monkeypatch, "cpu")
    assert on_cpu.numeric_identity == {"device": "cpu", "dtype": "float32"}


def test_an_extractor_on_a_gpu_has_another_cache_identity_and_the_cpu_one_is_unchanged(monkeypatch, tmp_path):
    from trecs_eval.features import inception
    from trecs_eval.features.cache import FeatureCache

    cache = FeatureCache(tmp_path / "cache.sqlite")
    cpu = inception.InceptionExtractor(uncalibrated=True, device="cpu", progress=False, cache=cache)
    monkeypatch.setattr(inception, "resolve_device", lambda device: "cuda")
    gpu = inception.InceptionExtractor(uncalibrated=True, device="auto", progress=False, cache=cache)
    assert "device" not in cpu.identity.extra  # CPU caches made before stay valid
    assert gpu.identity.extra["device"] == "cuda" and gpu.identity.key() != cpu.identity.key()

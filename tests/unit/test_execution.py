"""The [execution] section and `run --ray`: not hashed, validated, a clear message without Ray;
the Ray generation helpers that need no cluster (shards, provenance merge)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from tests.harness_fixtures import make_items
from trecs_eval.cli import main
from trecs_eval.commands.run import with_engine
from trecs_eval.config import ExecutionSpec, RunConfig, config_from_dict, config_hash
from trecs_eval.errors import ConfigError
from trecs_eval.execution import make_engine
from trecs_eval.execution.ray_features import batch_shards
from trecs_eval.execution.ray_generation import merge_provenance_parts, provenance_parts_dir, shard
from trecs_eval.generation.runner import provenance_path, read_provenance


def test_engine_does_not_change_the_hash_but_other_fields_do() -> None:
    base = config_from_dict({"name": "x"})
    on_ray = config_from_dict({"name": "x", "execution": {"engine": "ray", "address": "auto", "workers": 4}})
    assert on_ray.execution.engine == "ray" and on_ray.execution.workers == 4
    assert config_hash(on_ray) == config_hash(base)
    assert config_hash(config_from_dict({"name": "x", "seed": 1})) != config_hash(base)


@pytest.mark.parametrize(("section", "message"), [
    ({"engine": "rey"}, "did you mean .ray."),
    ({"workers": -1}, "workers"),
    ({"shard_batches": 0}, "shard_batches"),
    ({"gpus_per_worker": -1}, "gpus_per_worker"),
    ({"nodes": 2}, "unknown key 'execution.nodes'"),
])
def test_bad_execution_sections_are_config_errors(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"execution": section}, source="run.toml")


def test_ray_flag_sets_the_engine_and_address() -> None:
    config = RunConfig()
    assert with_engine(config, None) == config
    assert with_engine(config, "").execution == ExecutionSpec(engine="ray", address=None)
    assert with_engine(config, "auto").execution.address == "auto"
    assert with_engine(config, "ray://head:10001").execution.address == "ray://head:10001"


def test_missing_ray_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'trecs-eval\[ray\]'"):
        make_engine(ExecutionSpec(engine="ray"))
    config = tmp_path / "c.toml"
    config.write_text(f'out_dir = "{tmp_path / "out"}"\n[[systems]]\nname = "noise"\n', encoding="utf-8")
    assert main(["run", str(config), "--ray", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "trecs-eval: error: the ray engine needs Ray, which is not installed: " \
                  "pip install 'trecs-eval[ray]'"
    assert not (tmp_path / "out").exists()  # nothing claimed before the engine could start


def test_shards_are_whole_batches_in_order() -> None:
    items = make_items(11)
    shards = shard(items, batch_size=3, shard_batches=2)
    assert [len(s) for s in shards] == [6, 5]
    assert [it for s in shards for it in s] == items
    assert batch_shards(list(range(7)), 2, 1) == [[0, 1], [2, 3], [4, 5], [6]]


def test_provenance_parts_merge_once_and_drop_torn_lines(tmp_path: Path) -> None:
    record = {"item_id": "a", "system": "s", "seed": 0}
    provenance_path(tmp_path, "s").parent.mkdir(parents=True)
    provenance_path(tmp_path, "s").write_text(json.dumps(record) + "\n", encoding="utf-8")
    parts = provenance_parts_dir(tmp_path, "s")
    parts.mkdir(parents=True)
    lines = [json.dumps({**record, "item_id": i}) for i in ("b", "c")]
    (parts / "1.jsonl").write_text(f"{lines[0]}\n{json.dumps(record)}\n", encoding="utf-8")  # "a" again
    (parts / "2.jsonl").write_text(lines[1] + '\n{"item_id": "d", "sys', encoding="utf-8")  # torn by a kill
    assert merge_provenance_parts(tmp_path, "s") == 2
    assert [r["item_id"] for r in read_provenance(tmp_path, "s")] == ["a", "b", "c"]
    assert not list(parts.iterdir())
    assert merge_provenance_parts(tmp_path, "s") == 0


def test_local_engine_info_names_the_engine() -> None:
    info = make_engine(dataclasses.replace(ExecutionSpec())).info()
    assert info["engine"] == "local" and info["nodes"] == 1 and info["cpus"] >= 1


def test_workers_load_the_drivers_uncalibrated_weight_files(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray worker must load the files the driver's identity hashes, not make its own elsewhere."""
    from trecs_eval.execution.ray_features import worker_settings
    from trecs_eval.features import weights
    from trecs_eval.features.clip import uncalibrated_weights_path
    from trecs_eval.metrics.engine import ExtractorSettings

    made = tmp_path / "inception-calibrated.pth"
    monkeypatch.setattr(weights, "calibrated_weights", lambda seed: weights.ResolvedWeights(
        made, "0" * 64, "calibrated-random", uncalibrated=True))
    settings = ExtractorSettings(uncalibrated=True, seed=0, clip_model="ViT-B-32", batch_size=7)
    mapped = worker_settings(settings)
    assert not mapped.uncalibrated and mapped.inception_weights == str(made)
    assert mapped.clip_pretrained == str(uncalibrated_weights_path("ViT-B-32", 0))
    assert mapped.batch_size == 7  # everything else as the driver's: same batches
    assert worker_settings(ExtractorSettings()) == ExtractorSettings()

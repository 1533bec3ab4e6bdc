"""Run configs: TOML round trip, canonical hash, and errors that name the file and the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import baselines  # noqa: F401  (registers the built-in systems)
from trecs_eval.commands.demo import demo_config
from trecs_eval.config import (
    RunConfig,
    SystemSpec,
    config_differences,
    config_hash,
    dump_config,
    load_config,
    save_config,
)
from trecs_eval.errors import ConfigError
from trecs_eval.generation.protocol import GENERATORS
from trecs_eval.measure import check_metric_names

REPO = Path(__file__).resolve().parents[2]
BASE = """
name = "t"
out_dir = "runs/t"
seed = 3
[dataset]
kind = "toyworld"
path = "data/eval"
train_dir = "data/train"
[reference]
kind = "images"
images = "data/real/images"
[extractors]
uncalibrated = true
[[systems]]
name = "noise"
[[systems]]
name = "trecs-oracle"
generator = "trecs"
params = { tags = "oracle", top_k = 5 }
[[metrics]]
name = "fid"
[[metrics]]
name = "kid"
params = { subsets = 10 }
"""


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip_is_identity(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.systems[1] == SystemSpec("trecs-oracle", "trecs", {"tags": "oracle", "top_k": 5})
    assert config.systems[0].generator == "noise"  # generator defaults to the system name
    again = tmp_path / "again.toml"
    save_config(config, again)
    assert load_config(again) == config
    assert config_hash(load_config(again)) == config_hash(config)


def test_hash_ignores_layout_but_not_meaning(tmp_path):
    config = load_config(write(tmp_path, BASE))
    # same meaning, other layout: keys moved, a default written out, inline tables
    relaid = """
seed = 3
reference = { images = "data/real/images", kind = "images" }
extractors = { uncalibrated = true, preprocessing = "tf1" }
out_dir = "runs/t"
name = "t"
systems = [{ name = "noise", generator = "noise" },
           { generator = "trecs", name = "trecs-oracle", params = { top_k = 5, tags = "oracle" } }]
metrics = [{ name = "fid" }, { name = "kid", params = { subsets = 10 } }]
dataset = { train_dir = "data/train", path = "data/eval", kind = "toyworld" }
"""
    assert config_hash(load_config(write(tmp_path, relaid, "b.toml"))) == config_hash(config)
    assert config_hash(dataclasses.replace(config, seed=4)) != config_hash(config)
    predicted = SystemSpec("trecs-oracle", "trecs", {"tags": "predicted"})
    other_params = dataclasses.replace(config, systems=(config.systems[0], predicted))
    assert config_hash(other_params) != config_hash(config)


def test_hash_ignores_where_and_on_which_device():
    config = RunConfig(dataset=RunConfig().dataset)
    moved = dataclasses.replace(config, out_dir=Path("elsewhere"), device="cuda", report_formats=("csv",))
    assert config_hash(moved) == config_hash(config)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('seed = 3', 'seeed = 3', "unknown key 'seeed' (did you mean 'seed'?)"),
    ('path = "data/eval"', 'pth = "data/eval"', "unknown key 'dataset.pth' (did you mean 'path'?)"),
    ('kind = "images"', 'kind = "image"', "reference.kind = 'image' is not allowed (did you mean 'images'?)"),
    ('uncalibrated = true', 'uncalibrated = "yes"', "extractors.uncalibrated must be bool"),
    ('seed = 3', 'seed = true', "seed must be int"),
    ('seed = 3', 'seed = "3"', "seed must be int"),
    ('name = "noise"', 'nme = "noise"', "unknown key 'systems[0].nme' (did you mean 'name'?)"),
    ('name = "noise"', 'name = "no ise"', "systems[0].name = 'no ise'"),
    ('name = "noise"', 'name = "trecs-oracle"', "repeated: trecs-oracle"),
    ('kind = "images"', 'kind = "stats"', "reference.stats is required"),
])
def test_errors_name_file_and_key(tmp_path, old, new, expected):
    path = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_unreadable_configs(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    bad = write(tmp_path, "name = \n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid TOML"):
        load_config(bad)


def test_differences_name_what_changed(tmp_path):
    config = load_config(write(tmp_path, BASE))
    extended = dataclasses.replace(config, seed=9, systems=(*config.systems, SystemSpec("real")))
    diffs = config_differences(config, extended)
    assert "seed: 3 -> 9" in diffs
    assert "systems: added 'real'" in diffs
    assert config_differences(config, config) == []


@pytest.mark.parametrize("name", ["demo.toml", "ln_coco_val.toml", "ln_openimages_val.toml"])
def test_shipped_configs_load_and_round_trip(name):
    config = load_config(REPO / "configs" / name)
    assert config.systems and config.metrics
    assert load_config_text(dump_config(config)) == config
    check_metric_names(config)  # every metric and system name is one the harness knows
    for system in config.systems:
        assert system.generator in GENERATORS


def test_demo_command_runs_the_shipped_demo_config():
    shipped = load_config(REPO / "configs" / "demo.toml")
    assert demo_config(Path("runs/demo"), 300, uncalibrated=False) == shipped


def load_config_text(text: str) -> RunConfig:
    import tomllib

    from trecs_eval.config import config_from_dict

    return config_from_dict(tomllib.loads(text))

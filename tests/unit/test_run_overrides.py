"""``trecs-eval run --limit N --metrics a,b``: the documented overrides for a quick look at a large
benchmark, applied to the frozen config (the shipped LN-COCO config as the example)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT
from trecs_eval.commands.run import with_overrides
from trecs_eval.config import config_hash, load_config
from trecs_eval.errors import ConfigError

LN_COCO = REPO_ROOT / "configs" / "ln_coco_val.toml"


def test_limit_and_metrics_narrow_the_config_and_change_its_hash():
    config = load_config(LN_COCO)
    quick = with_overrides(config, None, False, limit=20, metrics="fid, clip_score")
    assert quick.dataset.limit == 20 and config.dataset.limit is None
    assert [m.name for m in quick.metrics] == ["fid", "clip_score"]
    assert config_hash(quick) != config_hash(config)  # its own run, never mixed with the full one
    assert with_overrides(config, None, False) == config


def test_bad_overrides_are_config_errors():
    config = load_config(LN_COCO)
    with pytest.raises(ConfigError, match="did you mean 'fid'"):
        with_overrides(config, None, False, metrics="fdi")
    with pytest.raises(ConfigError, match="at least 1"):
        with_overrides(config, None, False, limit=0)


def test_shipped_real_configs_do_not_point_outside_the_project():
    for name in ("ln_coco_val.toml", "ln_openimages_val.toml"):
        text = (REPO_ROOT / "configs" / name).read_text(encoding="utf-8")
        assert "../" not in text and "shared" not in text
        assert "train_dir" not in text  # bank, tagger and caption bank come from `data prepare`

"""Shared fixtures. Real TReCS label files are read from ../shared/data, never copied here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TRECS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SEQUENCE_LABELS_DIR = SHARED_DATA / "trecs_sequence_labels"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache: tests never write to the user's cache."""
    monkeypatch.setenv("TRECS_EVAL_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def sequence_labels_dir() -> Path:
    if not (SEQUENCE_LABELS_DIR / "val_coco.words.txt").is_file():
        pytest.fail(f"real TReCS label files not found at {SEQUENCE_LABELS_DIR} (../shared/data)")
    return SEQUENCE_LABELS_DIR

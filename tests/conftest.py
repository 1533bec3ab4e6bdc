"""Shared fixtures.

The released TReCS label files: the full files where they are at hand, else the small vendored
subset under ``tests/data/trecs_sequence_labels_subset`` (see its PROVENANCE.md). The full files are
looked for in ``$TRECS_SHARED_DATA/trecs_sequence_labels`` (if that variable is set, it must hold
them), then ``../shared/data/trecs_sequence_labels`` beside the checkout, then
``data/trecs_sequence_labels`` (where ``trecs-eval data download trecs-labels`` puts them).
Tests marked ``full_labels`` need the full files (pinned checksums, published line counts) and skip
without them, naming the command that fetches them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS_FOLDER = "trecs_sequence_labels"  # the folder `trecs-eval data download trecs-labels` writes
SUBSET_LABELS_DIR = REPO_ROOT / "tests" / "data" / "trecs_sequence_labels_subset"
FETCH_FULL_LABELS = "trecs-eval data download trecs-labels"  # run in the checkout: writes data/


def _has_labels(folder: Path) -> bool:
    return (folder / "val_coco.words.txt").is_file()


def full_labels_dir() -> Path | None:
    """The folder of the full released label files, or None where none is at hand."""
    if os.environ.get("TRECS_SHARED_DATA"):
        folder = Path(os.environ["TRECS_SHARED_DATA"]) / LABELS_FOLDER
        if not _has_labels(folder):
            pytest.fail(f"TRECS_SHARED_DATA is set, but {folder} holds no val_coco.words.txt")
        return folder
    for folder in (REPO_ROOT.parent / "shared" / "data" / LABELS_FOLDER, REPO_ROOT / "data" / LABELS_FOLDER):
        if _has_labels(folder):
            return folder
    return None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache: tests never write to the user's cache."""
    monkeypatch.setenv("TRECS_EVAL_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def sequence_labels_dir() -> Path:
    """The released label files: the full ones where at hand, else the vendored subset."""
    return full_labels_dir() or SUBSET_LABELS_DIR


@pytest.fixture(scope="session")
def full_sequence_labels_dir() -> Path:
    """The full released label files; a test that asks for them is marked ``full_labels``."""
    folder = full_labels_dir()
    if folder is None:
        pytest.skip(f"needs the full released TReCS label files: run `{FETCH_FULL_LABELS}` in the "
                    "checkout (or set TRECS_SHARED_DATA)")
    return folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads the full files must say so with ``@pytest.mark.full_labels`` (CI selects
    them with ``-m full_labels`` for its pass with the full files)."""
    for item in items:
        if "full_sequence_labels_dir" in getattr(item, "fixturenames", ()) and \
                item.get_closest_marker("full_labels") is None:
            raise pytest.UsageError(f"{item.nodeid} uses full_sequence_labels_dir without "
                                    "@pytest.mark.full_labels")

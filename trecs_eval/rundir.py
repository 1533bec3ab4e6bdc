"""The run directory on disk: claiming it for a config (resume rules) and writing its tables.

Resume rule: a directory holding ``config.hash`` is reused only by a config with the same hash
(:func:`trecs_eval.config.config_hash`). A different hash raises :class:`ResumeError` listing
what changed, unless ``force``: then the outputs the change invalidates are deleted (a changed
or removed system's images, canvases, provenance and features; everything generated when the
dataset, seed or image size changed) and everything else is kept, so adding a system computes
only that system.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trecs_eval.atomic import atomic_write
from trecs_eval.config import RunConfig, config_differences, config_hash, dump_config, load_config
from trecs_eval.errors import ResumeError
from trecs_eval.generation.runner import (
    CANVASES_DIR,
    IMAGES_DIR,
    PROVENANCE_DIR,
    provenance_path,
)
from trecs_eval.results import SAMPLES_FILE

log = logging.getLogger(__name__)

CONFIG_FILE, HASH_FILE, FEATURES_DIR, REPORT_DIR = "config.toml", "config.hash", "features", "report"
NARRATIVES_FILE = "narratives.jsonl"
REFERENCE_FEATURES = "reference"  # features/reference.npz: the FID/KID reference set
# config keys whose change invalidates every generated image
_GENERATION_KEYS = ("dataset", "seed", "image_size")


def claim_run_dir(config: RunConfig, force: bool = False) -> Path:
    """Create or reuse ``config.out_dir`` for ``config``; write config.toml and config.hash.

    Returns the run directory. Raises ResumeError when it belongs to another config (unless
    ``force``) or holds run outputs but no config.hash.
    """
    run_dir = Path(config.out_dir)
    new_hash = config_hash(config)
    hash_path = run_dir / HASH_FILE
    if hash_path.is_file():
        old_hash = hash_path.read_text(encoding="utf-8").strip()
        if old_hash != new_hash:
            old = load_config(run_dir / CONFIG_FILE)
            diffs = config_differences(old, config)
            if not force:
                raise ResumeError(
                    f"{run_dir} holds a run of another config (hash {old_hash[:12]} != {new_hash[:12]}); "
                    f"changed: {'; '.join(diffs) or 'unhashed fields only'}",
                    hint="use another out_dir, or pass --force to reuse it: outputs of changed systems "
                         "are deleted and regenerated, the rest is kept")
            log.warning("--force: reusing %s for a changed config (%s)", run_dir, "; ".join(diffs))
            _discard_invalidated(run_dir, old, config)
    elif (run_dir / IMAGES_DIR).exists() and not force:
        raise ResumeError(f"{run_dir} holds images but no {HASH_FILE}: not a run of this tool, or damaged",
                          hint="use another out_dir, or pass --force to reuse it")
    elif (run_dir / IMAGES_DIR).exists():
        log.warning("--force: %s has no %s; discarding its images", run_dir, HASH_FILE)
        for sub in (IMAGES_DIR, CANVASES_DIR, PROVENANCE_DIR, FEATURES_DIR):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / CONFIG_FILE, dump_config(config))
    write_text_atomic(hash_path, new_hash + "\n")
    return run_dir


def _discard_invalidated(run_dir: Path, old: RunConfig, new: RunConfig) -> None:
    old_d, new_d = _as_plain(old), _as_plain(new)
    if any(old_d.get(k) != new_d.get(k) for k in _GENERATION_KEYS):
        names = [s.name for s in old.systems]
        log.warning("--force: dataset/seed/image size changed; discarding all generated images")
    else:
        new_specs = {s.name: s for s in new.systems}
        names = [s.name for s in old.systems if new_specs.get(s.name) != s]
    for name in names:
        log.warning("--force: discarding the outputs of system %r", name)
        for sub in (IMAGES_DIR, CANVASES_DIR):
            shutil.rmtree(run_dir / sub / name, ignore_errors=True)
        provenance_path(run_dir, name).unlink(missing_ok=True)
        (run_dir / FEATURES_DIR / f"{name}.npz").unlink(missing_ok=True)


def _as_plain(config: RunConfig) -> dict[str, Any]:
    import json

    from trecs_eval.config import canonical_json

    return json.loads(canonical_json(config))


def write_text_atomic(path: Path, text: str) -> None:
    """Write text via a temp file in the same folder and ``os.replace``."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_features_npz(path: Path, item_ids: Sequence[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """``features/{name}.npz``: ``item_ids`` plus one row per item in every array (atomic)."""
    for key, value in arrays.items():
        if value.shape[0] != len(item_ids):
            raise ValueError(f"{key}: {value.shape[0]} rows for {len(item_ids)} item ids")
    with atomic_write(path) as fh:
        np.savez(fh, item_ids=np.asarray(list(item_ids), dtype=str), **arrays)
    return path


def write_samples(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``samples.parquet``: one row per (system, item_id), written atomically."""
    frame = pd.DataFrame(list(rows))
    if frame.duplicated(["system", "item_id"]).any():
        raise ValueError("samples: duplicate (system, item_id) rows")
    path = run_dir / SAMPLES_FILE
    with atomic_write(path) as fh:
        frame.to_parquet(fh, index=False)
    return path

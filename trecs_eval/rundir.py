"""The run directory on disk: who owns it, who holds it, and what a changed config may delete.

Ownership. A run claims ``out_dir`` only when it is absent, empty, or carries the marker
``.trecs-eval-run.json`` (written atomically before anything else). Anything else (a user's
folder, ``/``, the home folder, the current directory or one of its parents, a path under a
file) is refused before anything is written. A wave-1 run directory (``config.hash`` and a
readable ``config.toml``, no marker) is adopted.

Lock. While a run works in a directory it holds ``fcntl.flock`` on ``.trecs-eval.lock``, whose
text says which process (pid, host) holds it; a second run is refused naming that process. The
kernel drops the lock when the holder dies, so a stale lock file is simply taken over.

Resume rule: a directory holding ``config.hash`` is reused only by a config with the same hash
(:func:`trecs_eval.config.config_hash`). A different hash raises :class:`ResumeError` listing
what changed, unless ``force`` or the directory holds no output yet (a run that failed before
producing anything does not bind its folder). Then exactly the outputs the change invalidates
are deleted, and only files the run recorded as written: images and canvases of the items in
``provenance/{system}.jsonl``, that provenance file, and files listed in ``.trecs-eval-written``
(features, a toyworld folder built inside the run). Nothing else is ever deleted; a folder left
non-empty by a user's file is kept and named in a warning.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trecs_eval.atomic import atomic_write, blocking_file, ensure_dir, write_text
from trecs_eval.config import (
    _SAFE_NAME,
    RunConfig,
    canonical_json,
    config_differences,
    config_hash,
    dump_config,
    load_config,
)
from trecs_eval.confine import append_plain, check_inside, open_plain, read_plain, register_root
from trecs_eval.errors import ConfigError, ResumeError, TrecsEvalError
from trecs_eval.generation.runner import (
    CANVASES_DIR,
    IMAGES_DIR,
    PROVENANCE_DIR,
    canvas_path,
    image_path,
    instances_path,
    provenance_path,
    read_provenance,
)
from trecs_eval.results import RESULTS_FILE, SAMPLES_FILE

log = logging.getLogger(__name__)

CONFIG_FILE, HASH_FILE, FEATURES_DIR, REPORT_DIR = "config.toml", "config.hash", "features", "report"
NARRATIVES_FILE = "narratives.jsonl"
REFERENCE_FEATURES = "reference"  # features/reference.npz: the FID/KID reference set
MARKER_FILE, LOCK_FILE, WRITTEN_FILE = ".trecs-eval-run.json", ".trecs-eval.lock", ".trecs-eval-written"
MARKER_FORMAT = "trecs-eval/run-dir"
# config keys whose change invalidates every generated image
_GENERATION_KEYS = ("dataset", "seed", "image_size")
_HELD: dict[Path, int] = {}  # resolved run dir -> fd of its locked lock file (this process)


class RunDirLockedError(ResumeError):
    """Another process is running in this run directory."""


# ---------------------------------------------------------------- where a run may write


def check_out_dir(out_dir: Path | str, source: str = "<config>") -> Path:
    """``out_dir`` resolved, or a ConfigError (naming ``source`` and the key) when it can never be
    a run directory: the filesystem root, the home folder, the current directory or one of its
    parents, a file, or a path under a file."""
    resolved = Path(out_dir).expanduser().resolve()
    where = f"{source}: out_dir = {str(out_dir)!r}"
    cwd = Path.cwd().resolve()
    forbidden = {p: "a parent of the current directory" for p in cwd.parents}
    forbidden.update({cwd: "the current directory", Path.home().resolve(): "your home folder",
                      Path(resolved.anchor): "the filesystem root"})
    if resolved in forbidden:
        raise ConfigError(f"{where} is {forbidden[resolved]} ({resolved}); a run needs a folder of its own",
                          hint="use e.g. out_dir = \"runs/NAME\"")
    blocker = blocking_file(resolved)
    if blocker is not None:
        raise ConfigError(f"{where}: {blocker} is a file, not a folder")
    return resolved


def _owned(run_dir: Path) -> bool:
    """True when ``run_dir`` may be claimed: absent, empty, marked, or a wave-1 run directory."""
    if not run_dir.exists():
        return True
    entries = {p.name for p in run_dir.iterdir()}
    if not entries - {LOCK_FILE} or MARKER_FILE in entries:
        return True
    if {HASH_FILE, CONFIG_FILE} <= entries:
        try:
            load_config(run_dir / CONFIG_FILE)
            return True
        except TrecsEvalError:
            return False
    return False


def _write_marker(run_dir: Path) -> None:
    if not (run_dir / MARKER_FILE).is_file():
        write_text(run_dir / MARKER_FILE, json.dumps(
            {"format": MARKER_FORMAT, "version": 1,
             "created": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n")


# ---------------------------------------------------------------- the lock


def lock_run_dir(run_dir: Path) -> None:
    """Hold the run directory's lock for this process (re-entrant); RunDirLockedError names the holder."""
    key = run_dir.resolve()
    if key in _HELD:
        return
    try:  # never through a link: the lock file is truncated below
        fd = open_plain(key / LOCK_FILE, os.O_RDWR | os.O_CREAT, key)
    except OSError as err:
        raise TrecsEvalError(f"cannot create the lock file {key / LOCK_FILE}: "
                             f"{os.strerror(err.errno or 0)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "unknown process"
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise TrecsEvalError(f"cannot lock {key / LOCK_FILE}: {os.strerror(err.errno)}") from None
        raise RunDirLockedError(f"{run_dir} is in use by another trecs-eval run ({holder}); wait for it to "
                                "finish or use another out_dir") from None
    # the lock file is rewritten in place: replacing it would hand a second run a fresh, unlocked inode
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _HELD[key] = fd


def release_run_dir(run_dir: Path | str) -> None:
    """Drop this process's lock on ``run_dir`` (no-op when not held)."""
    fd = _HELD.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# ---------------------------------------------------------------- claiming


def adopt_run_dir(out_dir: Path | str) -> Path:
    """Make ``out_dir`` this process's run directory: refuse a folder the tool did not make, create
    it, take its lock and write the marker. Callers that write into the run directory before
    :func:`claim_run_dir` (the demo's data splits) call this first."""
    run_dir = Path(out_dir)
    check_out_dir(run_dir)
    register_root(run_dir)
    if not _owned(run_dir):
        raise ResumeError(f"{run_dir} is not empty and was not made by `trecs-eval run`; nothing was "
                          "written to it", hint="choose a new or empty out_dir (--force never takes over "
                                                "a folder the tool did not make)")
    ensure_dir(run_dir)
    lock_run_dir(run_dir)
    _write_marker(run_dir)
    return run_dir


def claim_run_dir(config: RunConfig, force: bool = False) -> Path:
    """Create or reuse ``config.out_dir`` for ``config`` and hold its lock; write config.toml and
    config.hash. Returns the run directory. See the module docstring for the rules."""
    run_dir = adopt_run_dir(config.out_dir)
    new_hash = config_hash(config)
    hash_path = run_dir / HASH_FILE
    if hash_path.is_file():
        old_hash = hash_path.read_text(encoding="utf-8").strip()
        if old_hash != new_hash:
            _reclaim(run_dir, config, old_hash, new_hash, force)
    write_text(run_dir / CONFIG_FILE, dump_config(config))
    write_text(hash_path, new_hash + "\n")
    return run_dir


def _reclaim(run_dir: Path, config: RunConfig, old_hash: str, new_hash: str, force: bool) -> None:
    """The directory holds a run of another config: refuse, or discard what the change invalidates."""
    try:
        old = load_config(run_dir / CONFIG_FILE)
    except TrecsEvalError:
        old = None
    diffs = config_differences(old, config) if old is not None else ["config.toml unreadable"]
    produced = has_outputs(run_dir)
    if produced and not force:
        release_run_dir(run_dir)
        raise ResumeError(
            f"{run_dir} holds a run of another config (hash {old_hash[:12]} != {new_hash[:12]}); "
            f"changed: {'; '.join(diffs) or 'unhashed fields only'}",
            hint="use another out_dir, or pass --force to reuse it: outputs of changed systems "
                 "are deleted and regenerated, the rest is kept")
    if produced:
        log.warning("--force: reusing %s for a changed config (%s)", run_dir, "; ".join(diffs))
    else:
        log.info("%s: the earlier run produced nothing; claiming it for the new config", run_dir)
    _discard_invalidated(run_dir, old, config)


def has_outputs(run_dir: Path) -> bool:
    """True once a run produced something: a generated item, features or results.json (a dataset it
    built is an input, not an output)."""
    provenance = run_dir / PROVENANCE_DIR
    features = any(p.startswith(f"{FEATURES_DIR}/") for p in recorded_outputs(run_dir))
    return ((run_dir / RESULTS_FILE).is_file() or features
            or (provenance.is_dir() and any(p.is_file() and p.stat().st_size  # a dangling link: none
                                            for p in provenance.glob("*.jsonl"))))


def _discard_invalidated(run_dir: Path, old: RunConfig | None, new: RunConfig) -> None:
    old_d, new_d = _as_plain(old), _as_plain(new)
    systems = {p.stem for p in (run_dir / PROVENANCE_DIR).glob("*.jsonl") if _SAFE_NAME.match(p.stem)}
    if old is None or any(old_d.get(k) != new_d.get(k) for k in _GENERATION_KEYS):
        names = sorted(systems | {s.name for s in (old.systems if old else ())})
        log.info("dataset/seed/image size changed: discarding every generated image")
        recorded = recorded_outputs(run_dir)
    else:
        new_specs = {s.name: s for s in new.systems}
        names = [s.name for s in old.systems if new_specs.get(s.name) != s]
        recorded = {p for p in recorded_outputs(run_dir)
                    if p.startswith(f"{FEATURES_DIR}/") and Path(p).stem in names}
    # every deletion is checked before the first one: a link out of the run folder stops --force
    # with nothing deleted
    for name in names:
        for folder in (run_dir / IMAGES_DIR / name, run_dir / CANVASES_DIR / name):
            check_inside(run_dir, folder / "_")
        check_inside(run_dir, provenance_path(run_dir, name))
    for relative in recorded:
        check_inside(run_dir, run_dir / relative)
    for name in names:
        log.info("discarding the outputs of system %r", name)
        _discard_system(run_dir, name)
    for relative in sorted(recorded):
        _remove_recorded(run_dir, relative)


def _discard_system(run_dir: Path, system: str) -> None:
    """Delete the files the provenance of ``system`` records, then the provenance itself."""
    for record in read_provenance(run_dir, system):
        item_id = str(record.get("item_id", ""))
        if not item_id or "/" in item_id or item_id.startswith("."):
            continue  # a tampered record must not point outside the system's folder
        for path in (image_path(run_dir, system, item_id), canvas_path(run_dir, system, item_id),
                     instances_path(run_dir, system, item_id)):
            check_inside(run_dir, path).unlink(missing_ok=True)
    check_inside(run_dir, provenance_path(run_dir, system)).unlink(missing_ok=True)
    for sub in (IMAGES_DIR, CANVASES_DIR):
        _remove_if_empty(run_dir, run_dir / sub / system)


def _remove_recorded(run_dir: Path, relative: str) -> None:
    path = check_inside(run_dir, run_dir / relative)
    if path.is_dir() and not path.is_symlink():
        from trecs_eval.data.toyworld import remove_toyworld

        remove_toyworld(path)
    else:
        path.unlink(missing_ok=True)
    _forget(run_dir, relative)


def _remove_if_empty(run_dir: Path, folder: Path) -> None:
    if folder.is_symlink() or not folder.is_dir():
        return  # a link (even one inside the run folder) is the user's: neither emptied nor removed
    check_inside(run_dir, folder / "_")
    for tmp in folder.glob(".*.tmp"):  # temp files of a killed run of ours
        tmp.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        log.warning("kept %s: it holds files this tool did not write", folder)


def _as_plain(config: RunConfig | None) -> dict[str, Any]:
    return json.loads(canonical_json(config)) if config is not None else {}


# ---------------------------------------------------------------- the record of written files


def record_output(path: Path) -> None:
    """Note ``path`` (a file or folder inside a run directory) as written by the run, so a later
    ``--force`` may delete it. Paths outside a marked run directory are not recorded."""
    path = Path(path)
    for run_dir in list(path.parents)[:3]:
        if (run_dir / MARKER_FILE).is_file():
            relative = path.relative_to(run_dir).as_posix()
            if relative not in recorded_outputs(run_dir):  # append-only log, never through a link
                append_plain(run_dir / WRITTEN_FILE, relative + "\n", run_dir)
            return


def recorded_outputs(run_dir: Path) -> set[str]:
    """Relative paths the run recorded as written (features, a toyworld folder built inside it).
    A line that could point elsewhere (absolute, ``..``, ``.``, empty parts) is not ours: ignored."""
    text = read_plain(run_dir / WRITTEN_FILE, run_dir)
    return {line for line in (text or "").splitlines() if _plain_relative(line)}


def _plain_relative(line: str) -> bool:
    """True for ``a/b/c`` (no leading ``/``, no ``..``, ``.`` or empty part, no backslash)."""
    parts = line.split("/")
    return bool(line) and "\\" not in line and all(p not in ("", ".", "..") for p in parts)


def _forget(run_dir: Path, relative: str) -> None:
    kept = sorted(recorded_outputs(run_dir) - {relative})
    write_text(run_dir / WRITTEN_FILE, "".join(f"{p}\n" for p in kept))


# ---------------------------------------------------------------- tables


def write_features_npz(path: Path, item_ids: Sequence[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """``features/{name}.npz``: ``item_ids`` plus one row per item in every array (atomic)."""
    for key, value in arrays.items():
        if value.shape[0] != len(item_ids):
            raise ValueError(f"{key}: {value.shape[0]} rows for {len(item_ids)} item ids")
    with atomic_write(path) as fh:
        np.savez(fh, item_ids=np.asarray(list(item_ids), dtype=str), **arrays)
    record_output(path)
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


"""``human plan``: freeze a side-by-side study from a run directory.

Design, all from one seed (``numpy.random.default_rng(seed)``):

* items: ``n_items`` drawn without replacement from the run's items that have an image for every
  study system (and for the attention-check systems);
* regular tasks: every (item, system pair) is judged by ``judgments_per_pair`` *distinct* raters;
  each unit goes to the least-loaded raters (random tie-break), so loads differ by at most one and
  no rater sees an (item, pair) twice;
* sides: within each rater and pair, the pair's first system is on the left for half of that
  rater's tasks (the odd one out is random), then the rater's order is shuffled;
* attention checks: per rater ``round(attention_rate × regular)`` (at least one when the rate is
  positive) gold pairs, ``gold_system`` against the clearly broken ``broken_system``, sides random;
* repeats: per rater ``round(repeat_rate × regular)`` of their own regular tasks again, sides
  swapped, placed after the original (the only way a rater sees a pair twice).

The link tokens (``raters.json``) come from :mod:`secrets`, not from the seed, so a published
seed does not reveal them; they are not part of the study hash.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from trecs_eval.atomic import ensure_dir, write_text
from trecs_eval.errors import ConfigError, InputError, TrecsEvalError, suggest
from trecs_eval.human.study import (
    HASH_FILE,
    IMAGES_DIR,
    QUESTIONS,
    STUDY_FILE,
    STUDY_FORMAT,
    TOKENS_FILE,
    TRACE_QUESTIONS,
    Study,
    load_study,
    study_digest,
)
from trecs_eval.results import RESULTS_FILE, SAMPLES_FILE, read_results

MAX_TRACE_POINTS = 200
NON_METRIC_COLUMNS = frozenset({"n_words", "n_trace_points"})


@dataclass(frozen=True)
class PlanSpec:
    systems: tuple[str, ...]
    questions: tuple[str, ...] = ("realism", "alignment")
    judgments_per_pair: int = 5
    n_items: int = 100
    tasks_per_rater: int = 60
    n_raters: int | None = None
    attention_rate: float = 0.1
    attention_min_pass: float = 0.8
    gold_system: str | None = None
    broken_system: str = "noise"
    repeat_rate: float = 0.05
    seed: int = 0


def _check_spec(spec: PlanSpec, run_systems: list[str]) -> None:
    if len(spec.systems) < 2 or len(set(spec.systems)) != len(spec.systems):
        raise ConfigError(f"--systems needs at least two distinct systems, got {list(spec.systems)}")
    for name in spec.systems:
        if name not in run_systems:
            raise ConfigError(f"system {name!r} is not in the run{suggest(name, run_systems)}")
    for q in spec.questions:
        if q not in QUESTIONS:
            raise ConfigError(f"unknown question {q!r}{suggest(q, QUESTIONS)}")
    if spec.judgments_per_pair < 1 or spec.n_items < 1 or spec.tasks_per_rater < 1:
        raise ConfigError("--judgments-per-pair, --items and --tasks-per-rater must be >= 1")
    rates = (spec.attention_rate, spec.repeat_rate)
    if not (all(0 <= r <= 1 for r in rates) and 0 < spec.attention_min_pass <= 1):
        raise ConfigError("--attention-rate and --repeat-rate must lie in [0, 1], "
                          "--attention-min-pass in (0, 1]")
    if spec.attention_rate > 0:
        for name in (spec.broken_system, _gold(spec, run_systems)):
            if name not in run_systems:
                raise ConfigError(f"attention-check system {name!r} is not in the run"
                                  f"{suggest(name, run_systems)}",
                                  hint="pass --attention-system/--gold-system, or --attention-rate 0")


def _gold(spec: PlanSpec, run_systems: list[str]) -> str:
    if spec.gold_system:
        return spec.gold_system
    return "real" if "real" in run_systems else spec.systems[0]


def _read_run(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any], dict[str, bool]]:
    """samples, narratives by item id, metric directions."""
    from trecs_eval.data.localized_narratives import read_narratives

    for name in (SAMPLES_FILE, RESULTS_FILE, "narratives.jsonl"):
        if not (run_dir / name).is_file():
            raise TrecsEvalError(f"{run_dir}: not a finished run directory (no {name})",
                                 hint="run `trecs-eval run CONFIG` first")
    samples = pd.read_parquet(run_dir / SAMPLES_FILE)
    for column in ("item_id", "system", "image_path"):
        if column not in samples.columns:
            raise InputError("missing column", path=str(run_dir / SAMPLES_FILE), field=column)
    narratives = {n.item_id: n for n in read_narratives(run_dir / "narratives.jsonl").narratives}
    results = read_results(run_dir)
    directions = {m.name: bool(m.higher_is_better) for m in results.metrics}
    return samples, narratives, directions


def _trace(narrative: Any) -> list[list[float]]:
    points = narrative.trace_array()[:, :2] if narrative.traces else np.zeros((0, 2))
    if len(points) > MAX_TRACE_POINTS:
        points = points[np.linspace(0, len(points) - 1, MAX_TRACE_POINTS).round().astype(int)]
    return [[round(float(x), 4), round(float(y), 4)] for x, y in np.clip(points, 0.0, 1.0)]


def _copy_image(run_dir: Path, relative: str, images: Path) -> str:
    """Copy a run image into ``images/`` under its content hash; returns the study-relative path.

    Only a decodable image inside the run directory is taken: the server will publish the copy,
    so a samples.parquet pointing elsewhere (``../../home/me/.ssh/id_rsa``) must not get there."""
    source = (run_dir / relative).resolve()
    where = str(run_dir / SAMPLES_FILE)
    if not source.is_relative_to(run_dir.resolve()):
        raise InputError(f"image {relative!r} lies outside the run directory", path=where, field="image_path")
    try:
        with Image.open(source) as image:
            image.verify()
    except (OSError, SyntaxError) as err:
        raise InputError(f"image {relative!r} is not a readable image ({err})", path=where,
                         field="image_path") from None
    data = source.read_bytes()
    suffix = source.suffix.lower() if source.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") else ".png"
    name = hashlib.sha256(data).hexdigest() + suffix
    if not (images / name).exists():
        shutil.copyfile(source, images / name)
    return f"{IMAGES_DIR}/{name}"


def _items(run_dir: Path, samples: pd.DataFrame, narratives: dict[str, Any], shown: list[str],
           n_items: int, rng: np.random.Generator) -> list[str]:
    paths = samples.pivot_table(index="item_id", columns="system", values="image_path", aggfunc="first")
    complete = sorted(i for i in paths.index if i in narratives and paths.loc[i, shown].notna().all()
                      and all((run_dir / str(paths.loc[i, s])).is_file() for s in shown))
    if len(complete) < n_items:
        raise ConfigError(f"--items {n_items}: the run has only {len(complete)} item(s) with an image for "
                          f"every one of {', '.join(shown)}")
    return sorted(rng.choice(complete, size=n_items, replace=False).tolist())


def _item_records(run_dir: Path, out: Path, samples: pd.DataFrame, narratives: dict[str, Any],
                  item_ids: list[str], shown: list[str]) -> dict[str, Any]:
    images = ensure_dir(out / IMAGES_DIR)
    paths = samples.groupby(["item_id", "system"])["image_path"].first()
    return {item: {"narrative": narratives[item].caption, "trace": _trace(narratives[item]),
                   "images": {s: _copy_image(run_dir, str(paths[(item, s)]), images) for s in shown}}
            for item in item_ids}


def _item_metrics(samples: pd.DataFrame, directions: dict[str, bool], item_ids: list[str],
                  systems: tuple[str, ...]) -> dict[str, Any]:
    """Per-item values of every automatic metric the run has per sample (for metric-human agreement)."""
    chosen = samples[samples["item_id"].isin(item_ids) & samples["system"].isin(systems)]
    out: dict[str, Any] = {}
    for column in sorted(directions):
        if column in NON_METRIC_COLUMNS or column not in chosen.columns:
            continue
        values = pd.to_numeric(chosen[column], errors="coerce")
        if values.notna().sum() == 0:
            continue
        table = {f"{i}\t{s}": float(v) for i, s, v in zip(chosen["item_id"], chosen["system"], values,
                                                          strict=True) if math.isfinite(v)}
        out[column] = {"higher_is_better": directions[column], "values": table}
    return out


def _assign(units: list[tuple[str, int]], n_raters: int, per_unit: int,
            rng: np.random.Generator) -> list[list[tuple[str, int]]]:
    loads = np.zeros(n_raters)
    out: list[list[tuple[str, int]]] = [[] for _ in range(n_raters)]
    for k in rng.permutation(len(units)):
        chosen = np.lexsort((rng.random(n_raters), loads))[:per_unit]
        for r in chosen:
            out[r].append(units[k])
            loads[r] += 1
    return out


def _rater_tasks(rater: str, units: list[tuple[str, int]], pairs: list[tuple[str, str]], spec: PlanSpec,
                 gold: str, items: list[str], rng: np.random.Generator) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for p, (a, b) in enumerate(pairs):
        mine = [u for u in units if u[1] == p]
        flips = [k < len(mine) // 2 for k in range(len(mine))]
        if len(mine) % 2:
            flips[-1] = bool(rng.integers(2))
        for (item, _), flip in zip([mine[k] for k in rng.permutation(len(mine))], flips, strict=True):
            left, right = (b, a) if flip else (a, b)
            tasks.append({"rater": rater, "item": item, "left": left, "right": right, "kind": "regular"})
    n_regular = len(tasks)
    n_attention = max(1, round(spec.attention_rate * n_regular)) if spec.attention_rate > 0 else 0
    offset = int(rng.integers(2))  # gold on the left for half of a rater's checks
    # distinct items while there are enough: a rater should not meet the same gold pair twice
    check_items = rng.choice(items, size=n_attention, replace=n_attention > len(items))
    for k, item in enumerate(check_items):
        left, right = (gold, spec.broken_system) if (k + offset) % 2 else (spec.broken_system, gold)
        tasks.append({"rater": rater, "item": str(item), "left": left, "right": right, "kind": "attention"})
    order = [dict(tasks[k], key=n) for n, k in enumerate(rng.permutation(len(tasks)))]
    n_repeat = max(1, round(spec.repeat_rate * n_regular)) if spec.repeat_rate > 0 and n_regular else 0
    originals = [k for k, t in enumerate(order) if t["kind"] == "regular"]
    for k in sorted(rng.choice(originals, size=min(n_repeat, len(originals)), replace=False).tolist(),
                    reverse=True):
        t = order[k]
        repeat = dict(t, left=t["right"], right=t["left"], kind="repeat", key=None, repeat_of=t["key"])
        order.insert(int(rng.integers(k + 1, len(order) + 1)), repeat)
    return order


def _tasks(spec: PlanSpec, items: list[str], gold: str, rng: np.random.Generator) -> tuple[list[str], list]:
    pairs = list(itertools.combinations(spec.systems, 2))
    units = [(item, p) for item in items for p in range(len(pairs))]
    total = len(units) * spec.judgments_per_pair
    n_raters = spec.n_raters or max(spec.judgments_per_pair, math.ceil(total / spec.tasks_per_rater))
    if n_raters < spec.judgments_per_pair:
        raise ConfigError(f"--raters {n_raters} < --judgments-per-pair {spec.judgments_per_pair}: a pair "
                          "must go to that many distinct raters")
    raters = [f"r{k + 1:03d}" for k in range(n_raters)]
    per_rater = _assign(units, n_raters, spec.judgments_per_pair, rng)
    tasks = []
    for rater, units_of in zip(raters, per_rater, strict=True):
        order = _rater_tasks(rater, units_of, pairs, spec, gold, items, rng)
        ids = {t["key"]: f"{rater}-{k + 1:04d}" for k, t in enumerate(order) if t["key"] is not None}
        for k, t in enumerate(order):
            task = {key: v for key, v in t.items() if key != "key"}
            tasks.append(dict(task, task=f"{rater}-{k + 1:04d}", repeat_of=ids.get(t.get("repeat_of"))))
    return raters, tasks


def _claim(out: Path) -> None:
    """A study folder may be (re)planned only while it holds no judgment and is ours or empty."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file")
    if (out / STUDY_FILE).is_file():
        from trecs_eval.human.store import count_judgments

        if count_judgments(out) > 0:
            raise TrecsEvalError(f"{out}: the study already holds judgments; it is frozen",
                                 hint="plan a new study in another folder")
    elif out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is a non-empty folder that is not a study; nothing was written")


def plan_study(run_dir: Path | str, out: Path | str, spec: PlanSpec) -> Study:
    """Write the study folder ``out`` from ``run_dir`` and return it loaded."""
    run_dir, out = Path(run_dir), Path(out)
    samples, narratives, directions = _read_run(run_dir)
    run_systems = sorted(samples["system"].astype(str).unique())
    _check_spec(spec, run_systems)
    _claim(out)
    gold = _gold(spec, run_systems)
    shown = list(dict.fromkeys([*spec.systems, *((gold, spec.broken_system) if spec.attention_rate else ())]))
    rng = np.random.default_rng(spec.seed)
    item_ids = _items(run_dir, samples, narratives, shown, spec.n_items, rng)
    raters, tasks = _tasks(spec, item_ids, gold, rng)
    ensure_dir(out)
    data = {
        "format": STUDY_FORMAT, "version": 1, "seed": spec.seed,
        # the run by content, not by path: a moved run plans the same study
        "source_run": {"name": run_dir.resolve().name,
                       "results_sha256": hashlib.sha256((run_dir / RESULTS_FILE).read_bytes()).hexdigest()},
        "systems": list(spec.systems),
        "questions": [{"id": q, "text": QUESTIONS[q], "trace_overlay": q in TRACE_QUESTIONS}
                      for q in spec.questions],
        "judgments_per_pair": spec.judgments_per_pair, "repeat_rate": spec.repeat_rate,
        "attention": {"gold_system": gold if spec.attention_rate else None,
                      "broken_system": spec.broken_system if spec.attention_rate else None,
                      "rate": spec.attention_rate, "min_pass": spec.attention_min_pass},
        "items": _item_records(run_dir, out, samples, narratives, item_ids, shown),
        "item_metrics": _item_metrics(samples, directions, item_ids, spec.systems),
        "raters": raters, "tasks": tasks,
    }
    write_text(out / STUDY_FILE, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    write_text(out / HASH_FILE, study_digest(data) + "\n")
    tokens = {rater: secrets.token_urlsafe(18) for rater in raters}
    write_text(out / TOKENS_FILE, json.dumps(tokens, indent=1) + "\n")
    (out / TOKENS_FILE).chmod(0o600)
    return load_study(out)

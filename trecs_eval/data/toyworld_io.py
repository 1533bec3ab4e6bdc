"""Toyworld on disk: the manifest and the folder layout.

``manifest.json`` holds ``format`` ("trecs-eval/toyworld"), ``format_version``, ``n``, ``seed``,
``image_size``, ``shifted``, ``item_ids`` (index order) and ``paths`` relative to the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trecs_eval.atomic import write_text
from trecs_eval.errors import ConfigError, InputError

FORMAT = "trecs-eval/toyworld"
FORMAT_VERSION = 1
SEQUENCE_LABEL_SPLIT = "toyworld"  # sequence_labels/toyworld.{ids,words,tags}.txt


@dataclass(frozen=True)
class ToyworldPaths:
    """Where each part of a toyworld folder lives (``images_shifted`` is None without a shifted set)."""

    root: Path
    manifest: Path
    narratives: Path
    images: Path
    images_shifted: Path | None
    segmentation: Path
    instances: Path
    sequence_labels: Path
    annotations: Path

    @classmethod
    def under(cls, root: Path, shifted: bool = True) -> ToyworldPaths:
        root = Path(root)
        return cls(root=root, manifest=root / "manifest.json", narratives=root / "narratives.jsonl",
                   images=root / "images", images_shifted=root / "images_shifted" if shifted else None,
                   segmentation=root / "segmentation", instances=root / "instances",
                   sequence_labels=root / "sequence_labels", annotations=root / "annotations.json")

    def relative(self) -> dict[str, str | None]:
        """Paths relative to ``root`` (as written into manifest.json)."""
        out: dict[str, str | None] = {}
        for name in ("narratives", "images", "images_shifted", "segmentation", "instances", "sequence_labels",
                     "annotations"):
            path = getattr(self, name)
            out[name] = None if path is None else path.relative_to(self.root).as_posix()
        return out


@dataclass(frozen=True)
class ToyworldManifest:
    """What a toyworld folder holds: n scenes from ``seed`` at ``image_size``², their item ids."""

    n: int
    seed: int
    image_size: int
    item_ids: tuple[str, ...]
    paths: ToyworldPaths
    shifted: bool = True

    def to_json(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "n": self.n, "seed": self.seed,
                "image_size": self.image_size, "shifted": self.shifted, "paths": self.paths.relative(),
                "item_ids": list(self.item_ids)}


def write_manifest(manifest: ToyworldManifest) -> None:
    write_text(manifest.paths.manifest, json.dumps(manifest.to_json(), indent=1) + "\n")


def read_manifest(root: Path) -> ToyworldManifest:
    """Read ``root/manifest.json``; a wrong format, version or field is an InputError naming it."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise InputError("not a toyworld folder: manifest.json is missing", path=str(path),
                         hint="write one with `trecs-eval data toyworld --out DIR`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"not valid JSON ({err})", path=str(path)) from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"expected {FORMAT!r}", path=str(path), field="format")
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(f"unsupported version {data.get('format_version')!r}; this trecs-eval reads "
                         f"version {FORMAT_VERSION}", path=str(path), field="format_version")
    for key, kind in (("n", int), ("seed", int), ("image_size", int), ("shifted", bool), ("item_ids", list)):
        if not isinstance(data.get(key), kind):
            raise InputError(f"missing or not a {kind.__name__}", path=str(path), field=key)
    if len(data["item_ids"]) != data["n"]:
        raise InputError(f"{len(data['item_ids'])} item ids for n={data['n']}", path=str(path),
                         field="item_ids")
    return ToyworldManifest(n=data["n"], seed=data["seed"], image_size=data["image_size"],
                            item_ids=tuple(str(i) for i in data["item_ids"]),
                            paths=ToyworldPaths.under(Path(root), data["shifted"]), shifted=data["shifted"])


def foreign_entries(root: Path) -> list[Path]:
    """Files under ``root`` that a toyworld folder of this manifest does not hold (a user's file,
    another dataset); every entry when ``root`` has no toyworld manifest."""
    root = Path(root)
    try:
        manifest = read_manifest(root)
    except InputError:
        return sorted(root.iterdir()) if root.is_dir() else [root]
    paths = manifest.paths
    expected = {paths.manifest, paths.narratives, paths.annotations, paths.images, paths.segmentation,
                paths.instances, paths.sequence_labels}
    if paths.images_shifted is not None:
        expected.add(paths.images_shifted)
    pngs = {f"{item_id}.png" for item_id in manifest.item_ids}
    label_files = {f"{SEQUENCE_LABEL_SPLIT}.{kind}.txt" for kind in ("ids", "words", "tags")}
    foreign = [p for p in root.iterdir() if p not in expected]
    for folder in expected:
        if folder.is_dir():
            allowed = label_files if folder == paths.sequence_labels else pngs
            foreign += [p for p in folder.iterdir() if p.name not in allowed or not p.is_file()]
        elif folder.exists() and folder.suffix == "":
            foreign.append(folder)
    return sorted(foreign)


def remove_toyworld(root: Path) -> None:
    """Delete a toyworld folder, refusing (ConfigError, nothing deleted) when it holds anything a
    toyworld folder does not: a `data download` folder or a user's file is never deleted."""
    import shutil

    foreign = foreign_entries(root)
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        shown = ", ".join(str(p) for p in foreign[:3]) + more
        raise ConfigError(f"{root} is not a toyworld folder written by trecs-eval (it holds {shown}); "
                          "refusing to replace it", hint="pass a new or empty directory")
    shutil.rmtree(root)

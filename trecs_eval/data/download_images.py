"""One request per image: the LN-OpenImages val images that ``val_oi.ids.txt`` names.

The official Open Images downloader (``downloader.py``) reads ``{split}/{image_id}.jpg`` from
the ``open-images-dataset`` bucket one object at a time; so do we, over HTTPS, without boto3.
Resumable: an image already on disk is not fetched again (its sha256 is in the manifest). An
image that fails (HTTP error, cut connection) is listed in ``ROOT/<folder>/failed.txt`` with the
reason and the others continue; the command exits 2 at the end when any failed, and running it
again fetches only what is still missing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from trecs_eval.atomic import atomic_write
from trecs_eval.data.download_http import DownloadError, download_file, read_manifest, write_manifest
from trecs_eval.data.download_sources import Source
from trecs_eval.errors import InputError

log = logging.getLogger(__name__)

FAILED_NAME = "failed.txt"


def image_ids(source: Source, root: Path) -> list[str]:
    """Distinct image ids (file order) from the ``{image_id}_{annotator_id}`` lines of the ids file."""
    assert source.ids_file is not None
    path = root / source.ids_file
    if not path.is_file():
        raise InputError(f"{source.name} needs the ids file first", str(path),
                         hint=f"run `trecs-eval data download trecs-labels --root {root}`")
    ids: dict[str, None] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        item = line.strip()
        if not item:
            continue
        image_id, sep, _annotator = item.rpartition("_")
        if not sep or not image_id or not image_id.isalnum():
            raise InputError(f"expected {{image_id}}_{{annotator_id}}, got {item!r}", str(path), n)
        ids[image_id] = None
    return list(ids)


def download_images(source: Source, root: Path, base: str, *, retries: int = 3,
                    progress: bool = True) -> list[Path]:
    """Fetch every named image not yet on disk; returns the paths present afterwards.

    Raises DownloadError after the loop (not at the first failure) when any image failed; the
    failures are in ``failed.txt`` (``{image_id}\\t{reason}``), rewritten on each run.
    """
    folder = root / source.folder
    manifest = read_manifest(root)
    ids = image_ids(source, root)
    failed: list[tuple[str, str]] = []
    done: list[Path] = []
    todo = [i for i in ids if not (folder / f"{i}.jpg").is_file()]
    for image_id in tqdm(todo, desc=source.name, unit="image", disable=not progress):
        rel = f"{source.folder}/{image_id}.jpg"
        url = f"{base}/{source.folder.rsplit('/', 1)[-1]}/{image_id}.jpg"
        try:
            digest = download_file(url, root / rel, retries=retries, progress=False)
        except DownloadError as err:
            failed.append((image_id, err.message))
            continue
        manifest["files"][rel] = {"url": url, "bytes": (root / rel).stat().st_size, "sha256": digest,
                                  "source": source.name,
                                  "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds")}
        if len(manifest["files"]) % 50 == 0:  # keep the manifest current without rewriting it per image
            write_manifest(root, manifest)
    write_manifest(root, manifest)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / FAILED_NAME, "w", encoding="utf-8") as handle:
        handle.writelines(f"{image_id}\t{reason}\n" for image_id, reason in failed)
    done = [folder / f"{i}.jpg" for i in ids if (folder / f"{i}.jpg").is_file()]
    if failed:
        raise DownloadError(f"{source.name}: {len(failed)} of {len(ids)} images failed (first: "
                            f"{failed[0][0]}: {failed[0][1]}); list in {folder / FAILED_NAME}",
                            hint="run the same command again to retry only the missing images")
    return done


def image_status(source: Source, root: Path) -> str:
    """"present", "partial (k of n images)" or "absent" (absent also when the ids file is not there)."""
    try:
        ids = image_ids(source, root)
    except InputError:
        return "absent (needs trecs-labels first)"
    folder = root / source.folder
    found = sum((folder / f"{i}.jpg").is_file() for i in ids)
    if found == len(ids):
        return "present"
    return f"partial ({found} of {len(ids)} images)" if found else "absent"

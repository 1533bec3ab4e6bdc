"""Downloads against a local HTTP server on 127.0.0.1 (never the internet): resume, checksums, unzip."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile

import pytest

from tests.download_server import FileServer
from trecs_eval.data.download import (
    MANIFEST_NAME,
    SOURCES,
    ConnectionLostError,
    DownloadError,
    UnsafeArchiveError,
    _fetch,
    download,
    download_file,
    source_status,
)
from trecs_eval.errors import UnknownNameError


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


PAYLOAD = bytes(range(256)) * 4000  # 1 MB, not a multiple of the chunk size
NARRATIVES = "".join(json.dumps({"image_id": str(i), "caption": "a dog " * (i % 7)}) + "\n"
                     for i in range(20_000)).encode()  # ~1 MB of JSON lines


def test_cut_connection_leaves_part_and_rerun_resumes(server, tmp_path):
    server.files["/annotations/coco_val_localized_narratives.jsonl"] = NARRATIVES
    server.cut_after["/annotations/coco_val_localized_narratives.jsonl"] = 300_001
    with pytest.raises(ConnectionLostError, match="resume"):
        download("ln-coco-val", tmp_path, base_url=server.url + "/annotations", retries=0,
                 progress=False)
    part = tmp_path / "localized_narratives" / "coco_val_localized_narratives.jsonl.part"
    assert part.stat().st_size == 300_001
    (dest,) = download("ln-coco-val", tmp_path, base_url=server.url + "/annotations", progress=False)
    assert dest.read_bytes() == NARRATIVES and not part.exists()
    assert server.requests[-1][1] == "bytes=300001-"  # resumed, not restarted
    entry = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"][
        "localized_narratives/coco_val_localized_narratives.jsonl"]
    assert entry["sha256"] == hashlib.sha256(NARRATIVES).hexdigest() and entry["bytes"] == len(NARRATIVES)
    # a second run finds it in the manifest and makes no request
    n_requests = len(server.requests)
    download("ln-coco-val", tmp_path, base_url=server.url + "/annotations", progress=False)
    assert len(server.requests) == n_requests


def test_automatic_retry_resumes(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_after["/f.bin"] = 12345
    digest = download_file(server.url + "/f.bin", tmp_path / "f.bin", retries=1, progress=False,
                           sleep=lambda s: None)
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert [r[1] for r in server.requests] == [None, "bytes=12345-"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes")
    server.ignore_range = True
    download_file(server.url + "/f.bin", tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


@pytest.mark.full_labels
def test_pinned_checksums_of_the_real_trecs_files(server, tmp_path, full_sequence_labels_dir):
    source = SOURCES["trecs-labels"]
    pinned = [r for r in source.files if r.sha256 is not None]
    for remote in pinned:
        server.files[f"/{remote.remote_path}"] = (full_sequence_labels_dir / remote.name).read_bytes()
    server.files["/sequence_labels/train_coco.words.txt"] = b"a dog\n"
    server.files["/sequence_labels/train_coco.tags.txt"] = b"dog dog\n"
    paths = download("trecs-labels", tmp_path, base_url=server.url, progress=False)
    assert [p.name for p in paths] == [r.name for r in source.files]
    # unpinned files: the first download records their sha256
    entry = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"][
        "trecs_sequence_labels/train_coco.tags.txt"]
    assert entry["sha256"] == hashlib.sha256(b"dog dog\n").hexdigest()
    # a mirror with a different file is refused and leaves nothing behind
    server.files["/sequence_labels/val_oi.ids.txt"] = b"tampered\n"
    with pytest.raises(DownloadError, match="does not match the pinned"):
        download("trecs-labels", tmp_path / "again", base_url=server.url, progress=False)
    assert not list((tmp_path / "again" / "trecs_sequence_labels").glob("val_oi.ids.txt*"))


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_is_unpacked_with_prefix_filter_and_escapes_refused(server, tmp_path, monkeypatch):
    server.files["/stuffthingmaps_trainval2017.zip"] = _zip(
        {"val2017/000000000139.png": b"v", "train2017/000000000009.png": b"t"})
    monkeypatch.setenv("TRECS_EVAL_DOWNLOAD_BASE_URL", server.url)  # the env override
    download("coco-stuff-val2017", tmp_path, progress=False)
    assert (tmp_path / "coco_stuff" / "val2017" / "000000000139.png").read_bytes() == b"v"
    assert not (tmp_path / "coco_stuff" / "train2017").exists()
    server.files["/val2017.zip"] = _zip({"../evil.jpg": b"x"})
    with pytest.raises(DownloadError, match="escapes"):
        download("coco-val2017", tmp_path, progress=False)
    assert not (tmp_path / "evil.jpg").exists()


def test_http_errors_and_unknown_names(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download("ln-openimages-val", tmp_path, base_url=server.url, progress=False)
    with pytest.raises(UnknownNameError, match="did you mean 'ln-coco-val'"):
        download("ln-coco-vall", tmp_path)


def test_official_urls_are_the_public_ones():
    assert SOURCES["ln-coco-val"].base_url == (
        "https://storage.googleapis.com/localized-narratives/annotations")
    assert SOURCES["coco-val2017"].base_url == "http://images.cocodataset.org/zips"
    assert SOURCES["coco-stuff-val2017"].files[0].name == "stuffthingmaps_trainval2017.zip"
    assert "google-research/trecs_image_generation" in SOURCES["trecs-labels"].base_url


def _tar(build) -> bytes:
    """A tar made by ``build(tarfile)``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        build(tf)
    return buffer.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"png", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if not attrs else 0
    for key, value in attrs.items():
        setattr(info, key, value)
    tf.addfile(info, io.BytesIO(data) if not attrs else None)


@pytest.mark.parametrize(("member", "attrs", "says"), [
    ("../evil.png", {}, "outside the target"),
    ("/tmp/evil.png", {}, "outside the target"),
    ("imgs/link.png", {"type": tarfile.SYMTYPE, "linkname": "../../etc/passwd"}, "symbolic link"),
    ("imgs/hard.png", {"type": tarfile.LNKTYPE, "linkname": "imgs/1_2.png"}, "hard link"),
    ("imgs/dev", {"type": tarfile.CHRTYPE}, "device"),
])
def test_tar_members_that_could_escape_are_refused_before_anything_is_written(
        server, tmp_path, member, attrs, says):
    server.files["/trecs_images.tar"] = _tar(lambda tf: (_add(tf, "imgs/1_2.png"), _add(tf, member, **attrs)))
    with pytest.raises(UnsafeArchiveError, match=says):
        download("trecs-images", tmp_path, base_url=server.url, progress=False)
    assert not (tmp_path / "trecs_released" / "imgs").exists()  # all or nothing
    assert not (tmp_path / "evil.png").exists()


def test_released_tar_is_unpacked_and_status_follows(server, tmp_path):
    server.files["/trecs_images.tar"] = _tar(lambda tf: _add(tf, "trecs_images/coco/139_7.png", b"x"))
    assert source_status(tmp_path, SOURCES["trecs-images"]) == "absent"
    download("trecs-images", tmp_path, base_url=server.url, progress=False)
    assert (tmp_path / "trecs_released" / "trecs_images" / "coco" / "139_7.png").read_bytes() == b"x"
    assert source_status(tmp_path, SOURCES["trecs-images"]) == "present"


def test_alternative_name_is_taken_when_the_first_is_absent(server, tmp_path):
    tags = SOURCES["trecs-labels"].files[-1]
    assert tags.name == "train_coco.tags.txt" and tags.sha256 is None
    with pytest.raises(DownloadError, match="HTTP 404"):  # neither name exists
        _fetch(server.url, tmp_path, SOURCES["trecs-labels"], tags, retries=0, progress=False)
    server.files["/sequence_labels/train_coco.cleaned_tags.txt"] = b"dog\n"
    rel, entry = _fetch(server.url, tmp_path, SOURCES["trecs-labels"], tags, retries=0, progress=False)
    assert rel == "trecs_sequence_labels/train_coco.cleaned_tags.txt"
    assert entry["url"].endswith("/sequence_labels/train_coco.cleaned_tags.txt")
    assert entry["sha256"] == hashlib.sha256(b"dog\n").hexdigest()
    assert (tmp_path / rel).read_bytes() == b"dog\n"

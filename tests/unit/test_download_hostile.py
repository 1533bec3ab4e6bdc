"""Downloads from hostile or broken servers and archives (a local server on 127.0.0.1 only): what
is refused, with one line, and what is never written, appended to or destroyed."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import pytest

from tests.download_server import FileServer
from trecs_eval.cli import main
from trecs_eval.data.download import (
    MANIFEST_NAME,
    SOURCES,
    ConnectionLostError,
    DownloadError,
    UnsafeArchiveError,
    download,
    download_file,
    source_status,
)
from trecs_eval.data.download_archives import MAX_RATIO_ENV, MAX_UNPACKED_BYTES_ENV

LN = "/annotations/coco_val_localized_narratives.jsonl"
LN_REL = "localized_narratives/coco_val_localized_narratives.jsonl"
NARRATIVES = "".join(json.dumps({"image_id": str(i), "caption": "a cat " * (i % 5)}) + "\n"
                     for i in range(3000)).encode()
ERROR_PAGE = b"<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>\n"


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _patch_zip(data: bytes, offset_local: int | None, offset_central: int, value: int) -> bytes:
    """Overwrite one 32-bit field of the (single) member's local header and central record."""
    out = bytearray(data)
    if offset_local is not None:
        struct.pack_into("<I", out, out.find(b"PK\x03\x04") + offset_local, value)
    struct.pack_into("<I", out, out.find(b"PK\x01\x02") + offset_central, value)
    return bytes(out)


def _ln(server: FileServer, root, **kwargs):
    return download("ln-coco-val", root, base_url=server.url + "/annotations", progress=False, **kwargs)


def test_206_from_byte_zero_restarts_instead_of_appending(server, tmp_path):
    server.files[LN] = NARRATIVES
    server.cut_after[LN] = 10_001
    with pytest.raises(ConnectionLostError):
        _ln(server, tmp_path, retries=0)
    server.range_from_zero.add(LN)
    (dest,) = _ln(server, tmp_path)
    assert server.requests[-1][1] == "bytes=10001-"  # it did ask to resume
    assert dest.read_bytes() == NARRATIVES  # ... and took the whole file from 0, not appended


def test_html_error_page_with_200_is_refused_and_a_good_mirror_then_works(server, tmp_path):
    server.files[LN] = ERROR_PAGE
    server.content_type[LN] = "text/html; charset=utf-8"
    with pytest.raises(DownloadError, match="text/html"):
        _ln(server, tmp_path)
    server.content_type[LN] = "application/octet-stream"  # the same page, served as bytes
    with pytest.raises(DownloadError, match="HTML page"):
        _ln(server, tmp_path)
    folder = tmp_path / "localized_narratives"
    assert list(folder.iterdir()) == [] and not (tmp_path / MANIFEST_NAME).exists()
    server.files[LN] = NARRATIVES  # a good mirror: no --force needed, nothing was recorded
    (dest,) = _ln(server, tmp_path)
    assert dest.read_bytes() == NARRATIVES


def test_html_page_in_place_of_a_zip_is_one_line_not_a_traceback(server, tmp_path, capsys):
    server.files["/val2017.zip"] = ERROR_PAGE
    code = main(["-q", "data", "download", "coco-val2017", "--root", str(tmp_path), "--base-url", server.url])
    err = capsys.readouterr().err
    assert code == 2 and "HTML page" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "coco" / "val2017.zip").exists()


@pytest.mark.parametrize("bad", ["page", "bad_crc"])
def test_failed_force_keeps_the_good_archive_and_its_unpacked_files(server, tmp_path, bad):
    good = _zip({"val2017/000000000139.jpg": b"\xff\xd8\xffgood"})
    server.files["/val2017.zip"] = good
    download("coco-val2017", tmp_path, base_url=server.url, progress=False)
    image = tmp_path / "coco" / "val2017" / "000000000139.jpg"
    manifest = (tmp_path / MANIFEST_NAME).read_bytes()
    server.files["/val2017.zip"] = (ERROR_PAGE if bad == "page" else
                                    _patch_zip(_zip({"val2017/000000000139.jpg": b"\xff\xd8\xffnew!"}),
                                               14, 16, 12345))
    with pytest.raises(DownloadError):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False, force=True)
    assert (tmp_path / "coco" / "val2017.zip").read_bytes() == good
    assert image.read_bytes() == b"\xff\xd8\xffgood"
    assert (tmp_path / MANIFEST_NAME).read_bytes() == manifest
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == ["val2017", "val2017.zip"]


def test_a_planted_part_symlink_is_never_written_through(server, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"the user's own file\n")
    root = tmp_path / "root"
    (root / "localized_narratives").mkdir(parents=True)
    (root / "localized_narratives" / "coco_val_localized_narratives.jsonl.part").symlink_to(victim)
    server.files[LN] = NARRATIVES
    with pytest.raises(DownloadError, match="symbolic link"):
        _ln(server, root)
    assert victim.read_bytes() == b"the user's own file\n"


def test_a_part_that_is_a_fifo_is_refused_without_hanging(server, tmp_path):
    (tmp_path / "localized_narratives").mkdir()
    os.mkfifo(tmp_path / "localized_narratives" / "coco_val_localized_narratives.jsonl.part")
    server.files[LN] = NARRATIVES
    with pytest.raises(DownloadError, match="not a regular file"):
        _ln(server, tmp_path)


def test_chunked_transfer_cut_midway_is_resumable_not_a_traceback(server, tmp_path):
    server.files[LN] = NARRATIVES
    server.chunked_cut[LN] = 5000
    with pytest.raises(ConnectionLostError, match="connection lost"):
        _ln(server, tmp_path, retries=0)
    (dest,) = _ln(server, tmp_path)
    assert dest.read_bytes() == NARRATIVES


def test_a_body_without_any_length_is_refused_unless_pinned(server, tmp_path):
    server.files["/f.txt"] = b"some text\n"
    server.no_length.add("/f.txt")
    with pytest.raises(DownloadError, match="no length"):
        download_file(server.url + "/f.txt", tmp_path / "f.txt", progress=False)
    import hashlib
    pinned = hashlib.sha256(b"some text\n").hexdigest()
    download_file(server.url + "/f.txt", tmp_path / "f.txt", sha256=pinned, progress=False)
    assert (tmp_path / "f.txt").read_bytes() == b"some text\n"


def test_an_html_page_for_an_image_is_not_saved_as_a_jpeg(server, tmp_path):
    server.files["/validation/abc.jpg"] = ERROR_PAGE
    with pytest.raises(DownloadError, match="HTML page"):
        download_file(server.url + "/validation/abc.jpg", tmp_path / "abc.jpg", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("patch", "says"), [
    ((14, 16, 12345), "damaged"),  # CRC
    ((22, 24, 3), "damaged"),  # declares fewer bytes than it holds: stopped at 3, then the CRC
    ((22, 24, 50), "declares 50"),  # declares more bytes than it holds
])
def test_damaged_zip_members_leave_nothing_behind(server, tmp_path, patch, says, capsys):
    server.files["/val2017.zip"] = _patch_zip(_zip({"val2017/000000000001.jpg": b"\xff\xd8\xffjpeg"}), *patch)
    code = main(["-q", "data", "download", "coco-val2017", "--root", str(tmp_path), "--base-url", server.url])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == []  # no 0-byte image, no staging


def test_many_small_members_that_inflate_too_much_are_refused(server, tmp_path):
    small = {f"val2017/{i}.jpg": bytes((1 << 20) - 1) for i in range(3)}  # each under the per-member floor
    server.files["/val2017.zip"] = _zip(small, zipfile.ZIP_DEFLATED)
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == []


def test_zip_bomb_is_refused_before_writing(server, tmp_path, monkeypatch):
    server.files["/val2017.zip"] = _zip({"val2017/bomb.jpg": bytes(20 << 20)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == []
    monkeypatch.setenv(MAX_RATIO_ENV, "100000")  # the ratio is configurable ...
    monkeypatch.setenv(MAX_UNPACKED_BYTES_ENV, str(10 << 20))  # ... and so is the total
    with pytest.raises(UnsafeArchiveError, match="over the limit"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)
    monkeypatch.setenv(MAX_UNPACKED_BYTES_ENV, str(30 << 20))
    download("coco-val2017", tmp_path, base_url=server.url, progress=False)
    assert (tmp_path / "coco" / "val2017" / "bomb.jpg").stat().st_size == 20 << 20


def test_duplicate_zip_member_is_refused(server, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("val2017/1.jpg", b"a")
        zf.writestr("val2017/1.jpg", b"b")
    server.files["/val2017.zip"] = buffer.getvalue()
    with pytest.raises(UnsafeArchiveError, match="twice"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)


def test_not_enough_disk_space_is_refused_before_writing(server, tmp_path, monkeypatch):
    import shutil as real_shutil

    from trecs_eval.data import download_archives

    server.files["/val2017.zip"] = _zip({"val2017/1.jpg": bytes(5000)})
    usage = real_shutil.disk_usage(tmp_path)
    monkeypatch.setattr(download_archives.shutil, "disk_usage", lambda p: usage._replace(free=100))
    with pytest.raises(UnsafeArchiveError, match="bytes free"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)


@pytest.mark.parametrize("content", ['{"version": 3, "items": []}', "[1, 2, 3]",
                                     '{"files": {"a/b.txt": {"bytes": "12"}}}'])
def test_a_manifest_from_another_tool_is_refused_and_left_alone(server, tmp_path, capsys, content):
    (tmp_path / MANIFEST_NAME).write_text(content)
    server.files[LN] = NARRATIVES
    for argv in (["data", "download", "ln-coco-val", "--base-url", server.url + "/annotations"],
                 ["data", "download", "--list"]):
        code = main(["-q", *argv, "--root", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2 and "manifest" in err and "Traceback" not in err
    assert (tmp_path / MANIFEST_NAME).read_text() == content
    with pytest.raises(DownloadError):
        source_status(tmp_path, SOURCES["ln-coco-val"])


def test_a_bad_limit_setting_is_one_line(server, tmp_path, monkeypatch):
    server.files["/val2017.zip"] = _zip({"val2017/1.jpg": b"x"})
    monkeypatch.setenv(MAX_RATIO_ENV, "lots")
    with pytest.raises(DownloadError, match="not a number"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)


@pytest.mark.parametrize(("claimed", "says"), [
    ("bytes 10001-99/100", "unreadable Content-Range"),
    ("bytes 10001-10010/20000", "disagrees with Content-Length"),
    ("kilobytes 1-2", "unreadable Content-Range"),
])
def test_a_206_whose_content_range_makes_no_sense_is_refused(server, tmp_path, claimed, says):
    server.files[LN] = NARRATIVES
    server.cut_after[LN] = 10_001
    with pytest.raises(ConnectionLostError):
        _ln(server, tmp_path, retries=0)
    server.content_range[LN] = claimed
    with pytest.raises(DownloadError, match=says):
        _ln(server, tmp_path)
    part = tmp_path / "localized_narratives" / "coco_val_localized_narratives.jsonl.part"
    assert part.read_bytes() == NARRATIVES[:10_001]  # nothing appended


def test_a_planted_staging_link_and_file_links_are_replaced_not_followed(server, tmp_path):
    victim_dir = tmp_path / "user_photos"
    victim_dir.mkdir()
    (victim_dir / "holiday.jpg").write_bytes(b"mine")
    victim = tmp_path / "notes.txt"
    victim.write_bytes(b"my notes")
    root = tmp_path / "root"
    (root / "coco" / "val2017").mkdir(parents=True)
    (root / "coco" / ".val2017.zip.unpacking").symlink_to(victim_dir)  # planted scratch folder
    (root / "coco" / "val2017" / "1.jpg").symlink_to(victim)  # planted file link
    server.files["/val2017.zip"] = _zip({"val2017/1.jpg": b"\xff\xd8\xffnew",
                                         "val2017/2.jpg": b"\xff\xd8\xff2"})
    download("coco-val2017", root, base_url=server.url, progress=False)
    assert (victim_dir / "holiday.jpg").read_bytes() == b"mine" and victim.read_bytes() == b"my notes"
    assert sorted(p.name for p in victim_dir.iterdir()) == ["holiday.jpg"]
    image = root / "coco" / "val2017" / "1.jpg"
    assert not image.is_symlink() and image.read_bytes() == b"\xff\xd8\xffnew"


@pytest.mark.parametrize("name", ["/etc/evil.jpg", "C:/evil.jpg", "val2017/../../evil.jpg", "..\\evil.jpg"])
def test_zip_member_paths_that_leave_the_folder_are_refused(server, tmp_path, name):
    server.files["/val2017.zip"] = _zip({"val2017/ok.jpg": b"x", name: b"y"})
    with pytest.raises(UnsafeArchiveError, match="escapes the folder"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == []


def test_an_error_page_recorded_by_an_older_version_is_fetched_again(server, tmp_path):
    folder = tmp_path / "localized_narratives"
    folder.mkdir()
    (folder / "coco_val_localized_narratives.jsonl").write_bytes(ERROR_PAGE)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"files": {LN_REL: {
        "bytes": len(ERROR_PAGE), "sha256": "0" * 64, "url": "x"}}}))
    assert source_status(tmp_path, SOURCES["ln-coco-val"]) == "absent"
    server.files[LN] = NARRATIVES
    (dest,) = _ln(server, tmp_path)  # no --force needed
    assert dest.read_bytes() == NARRATIVES
    assert source_status(tmp_path, SOURCES["ln-coco-val"]) == "present"


def test_an_archive_of_too_many_members_is_refused_before_writing(server, tmp_path, monkeypatch):
    from trecs_eval.data import download_archives

    monkeypatch.setattr(download_archives, "MAX_MEMBERS", 3)
    server.files["/val2017.zip"] = _zip({f"val2017/{i}.jpg": b"" for i in range(4)})
    with pytest.raises(UnsafeArchiveError, match="holds 4 members, over the limit of 3"):
        download("coco-val2017", tmp_path, base_url=server.url, progress=False)
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == []

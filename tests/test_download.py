"""Tests of kdwsd.data.download against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from httpserver import FileServer

from kdwsd.data.download import (
    EXTRACT_MARKER,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    ensure_archives,
    extract,
    load_checksum_record,
)

FAST = {"backoff": 0.01, "timeout": 5.0, "progress": False}


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def _payload(n: int = 300_000) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------------
def test_download_verifies_and_places_atomically(server, tmp_path):
    data = _payload()
    url = server.add("files/a.bin", data)
    dest = tmp_path / "a.bin"
    out = download(url, dest, sha256=_sha(data), size=len(data), **FAST)
    assert out == dest
    assert dest.read_bytes() == data
    assert not (tmp_path / "a.bin.part").exists()


@pytest.mark.parametrize("progress", [False, True])
def test_resume_after_dropped_connection(server, tmp_path, progress):
    data = _payload(500_000)
    url = server.add("big.bin", data)
    cut = 123_457
    server.drop_after["/big.bin"] = cut
    dest = tmp_path / "big.bin"
    download(url, dest, sha256=_sha(data), size=len(data), chunk_size=8192, **{**FAST, "progress": progress})
    assert dest.read_bytes() == data
    reqs = server.requests_for("big.bin")
    assert len(reqs) == 2
    assert reqs[0].range is None and reqs[0].bytes_sent == cut
    # resumed, not restarted: the second request asked for the rest only
    assert reqs[1].range == f"bytes={cut}-" and reqs[1].status == 206
    assert reqs[1].bytes_sent == len(data) - cut
    assert server.bytes_sent("big.bin") < 2 * len(data)


def test_resume_from_existing_part_file(server, tmp_path):
    data = _payload()
    url = server.add("p.bin", data)
    dest = tmp_path / "p.bin"
    (tmp_path / "p.bin.part").write_bytes(data[:1000])  # left behind by a killed run
    download(url, dest, sha256=_sha(data), **FAST)
    assert dest.read_bytes() == data
    assert server.requests_for("p.bin")[0].range == "bytes=1000-"


def test_checksum_mismatch_keeps_bad_file_and_names_everything(server, tmp_path):
    data = _payload()
    url = server.add("c.bin", data)
    server.wrong_content["/c.bin"] = data[::-1]
    dest = tmp_path / "c.bin"
    with pytest.raises(ChecksumError) as info:
        download(url, dest, sha256=_sha(data), **FAST)
    err = info.value
    msg = str(err)
    corrupt = tmp_path / "c.bin.corrupt"
    assert url in msg and _sha(data) in msg and _sha(data[::-1]) in msg and str(corrupt) in msg
    assert err.corrupt_path == corrupt and corrupt.read_bytes() == data[::-1]
    assert not dest.exists() and not (tmp_path / "c.bin.part").exists()


def test_size_mismatch_is_a_checksum_error(server, tmp_path):
    data = _payload(1000)
    url = server.add("s.bin", data)
    with pytest.raises(ChecksumError, match="expected size 999"):
        download(url, tmp_path / "s.bin", size=999, **FAST)
    assert (tmp_path / "s.bin.corrupt").exists()


def test_md5_is_verified(server, tmp_path):
    data = _payload(1000)
    url = server.add("m.bin", data)
    download(url, tmp_path / "ok.bin", md5=hashlib.md5(data).hexdigest(), **FAST)
    with pytest.raises(ChecksumError, match="md5"):
        download(url, tmp_path / "bad.bin", md5="0" * 32, **FAST)


def test_second_call_is_idempotent_without_network(server, tmp_path):
    data = _payload()
    url = server.add("i.bin", data)
    dest = tmp_path / "i.bin"
    download(url, dest, sha256=_sha(data), **FAST)
    n = len(server.requests)
    mtime = dest.stat().st_mtime_ns
    download(url, dest, sha256=_sha(data), **FAST)
    assert len(server.requests) == n
    assert dest.stat().st_mtime_ns == mtime


def test_existing_file_that_does_not_verify_is_moved_aside(server, tmp_path):
    dest = tmp_path / "x.bin"
    dest.write_bytes(b"not the file")
    with pytest.raises(ChecksumError):
        download(server.add("x.bin", b"the file"), dest, sha256=_sha(b"the file"), **FAST)
    assert not dest.exists() and (tmp_path / "x.bin.corrupt").read_bytes() == b"not the file"
    assert server.requests == []


def test_unpublished_checksum_is_recorded_then_enforced(server, tmp_path):
    data = _payload(5000)
    url = server.add("r.bin", data)
    record = tmp_path / "checksums.json"
    dest = tmp_path / "r.bin"
    download(url, dest, checksum_record=record, **FAST)
    entry = load_checksum_record(record)["r.bin"]
    assert entry["sha256"] == _sha(data) and entry["size"] == len(data)
    assert entry["source"] == "recorded at first download" and entry["url"] == url
    # later use: a file that changed is caught against the record
    dest.write_bytes(data[:-1] + b"\x00")
    with pytest.raises(ChecksumError, match="checksum record"):
        download(url, dest, checksum_record=record, **FAST)
    # and a re-download serving different bytes is caught too
    server.wrong_content["/r.bin"] = b"y" * len(data)
    with pytest.raises(ChecksumError):
        download(url, dest, checksum_record=record, **FAST)


def test_published_checksum_is_recorded_as_published(server, tmp_path):
    data = b"abc" * 100
    record = tmp_path / "checksums.json"
    download(server.add("pub.bin", data), tmp_path / "pub.bin", sha256=_sha(data), checksum_record=record,
             **FAST)
    assert load_checksum_record(record)["pub.bin"]["source"] == "published"


def test_server_ignoring_range_and_dropping_gives_up(server, tmp_path):
    """A server that ignores Range and always cuts the connection must not loop forever."""
    data = _payload(10_000)
    url = server.add("norange.bin", data)
    server.ignore_range.add("/norange.bin")
    server.drop_always["/norange.bin"] = 100
    with pytest.raises(DownloadError, match="could not download"):
        download(url, tmp_path / "nr.bin", retries=2, **FAST)
    reqs = server.requests_for("norange.bin")
    assert len(reqs) == 4  # the first attempt made progress, then 3 restarts from 0 without progress
    assert all(r.status == 200 for r in reqs) and reqs[1].range == "bytes=100-"


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = _payload(10_000)
    url = server.add("nr2.bin", data)
    server.ignore_range.add("/nr2.bin")
    server.drop_after["/nr2.bin"] = 1234
    download(url, tmp_path / "nr2.bin", sha256=_sha(data), **FAST)
    assert (tmp_path / "nr2.bin").read_bytes() == data
    assert [r.bytes_sent for r in server.requests_for("nr2.bin")] == [1234, len(data)]


def test_retries_with_backoff_then_gives_up_keeping_part(server, tmp_path):
    server.fail_status["/down.bin"] = 503
    url = server.url("down.bin")
    with pytest.raises(DownloadError, match="HTTP 503"):
        download(url, tmp_path / "down.bin", retries=2, **FAST)
    assert len(server.requests_for("down.bin")) == 3


def test_http_404_fails_at_once(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("nothing.bin"), tmp_path / "n.bin", retries=3, **FAST)
    assert len(server.requests_for("nothing.bin")) == 1


def test_mirror_used_when_primary_fails(server, tmp_path):
    data = b"mirror data" * 50
    mirror = server.add("mirror/f.bin", data)
    download(server.url("missing/f.bin"), tmp_path / "f.bin", sha256=_sha(data), mirrors=[mirror], **FAST)
    assert (tmp_path / "f.bin").read_bytes() == data


def test_no_url_and_no_file_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="place it at"):
        download(None, tmp_path / "manual.tar.gz", **FAST)


# --------------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_extract_is_atomic_and_idempotent(tmp_path, kind):
    members = {"top/a.txt": b"a", "top/sub/b.txt": b"b"}
    arc = tmp_path / f"arc.{kind}"
    if kind == "zip":
        _zip(arc, members)
    else:
        _tar(arc, members, "w:gz" if kind == "tar.gz" else "w")
    out = extract(arc, tmp_path / "out", progress=False)
    assert (out / "top/sub/b.txt").read_bytes() == b"b"
    marker = json.loads((out / EXTRACT_MARKER).read_text())
    assert marker["archive"] == arc.name and marker["members"] == 2
    assert not (tmp_path / "out.partial").exists()
    # second call: nothing is re-extracted
    (out / "top/a.txt").write_bytes(b"changed")
    extract(arc, tmp_path / "out", progress=False)
    assert (out / "top/a.txt").read_bytes() == b"changed"


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt", "C:/evil.txt"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_extract_rejects_zip_slip(tmp_path, name, kind):
    members = {"fine.txt": b"x", name: b"evil"}
    arc = _zip(tmp_path / "bad.zip", members) if kind == "zip" else _tar(tmp_path / "bad.tar", members)
    with pytest.raises(UnsafeArchiveError, match="bad"):
        extract(arc, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_extract_rejects_symlink_escaping(tmp_path):
    arc = tmp_path / "link.tar"
    with tarfile.open(arc, "w") as tf:
        info = tarfile.TarInfo("d/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(arc, tmp_path / "out", progress=False)


def test_extract_refuses_foreign_folder_and_cleans_interrupted_run(tmp_path):
    arc = _zip(tmp_path / "a.zip", {"f.txt": b"1"})
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="not extracted from"):
        extract(arc, tmp_path / "out", progress=False)
    (tmp_path / "out2.partial").mkdir()
    (tmp_path / "out2.partial" / "junk").write_text("half")
    out = extract(arc, tmp_path / "out2", progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted([EXTRACT_MARKER, "f.txt"])


def test_extract_marker_detects_another_version(tmp_path):
    arc = _zip(tmp_path / "v.zip", {"f.txt": b"1"})
    extract(arc, tmp_path / "out", sha256="a" * 64, progress=False)
    assert json.loads((tmp_path / "out" / EXTRACT_MARKER).read_text())["sha256"] == "a" * 64
    extract(arc, tmp_path / "out", sha256="a" * 64, progress=False)  # same version: no-op
    with pytest.raises(FileExistsError, match="another archive or version"):
        extract(arc, tmp_path / "out", sha256="b" * 64, progress=False)


def test_extract_not_an_archive(tmp_path):
    f = tmp_path / "x.zip"
    f.write_text("hello")
    with pytest.raises(ValueError, match="neither a zip nor a tar"):
        extract(f, tmp_path / "out", progress=False)


# --------------------------------------------------------------------------------------------------
# ensure_archives (config level)
# --------------------------------------------------------------------------------------------------
def test_ensure_archives_downloads_extracts_and_reuses(server, tmp_path):
    zbytes = _zip(tmp_path / "src.zip", {"inner/x.txt": b"x"}).read_bytes()
    cfg = {
        "name": "toy",
        "root": str(tmp_path / "data"),
        "use_existing": None,
        "archives": {
            "z": {"url": server.add("dl/toy.zip", zbytes), "sha256": _sha(zbytes), "size": len(zbytes)},
            "csv": {"url": server.add("dl/list.csv", b"a,b\n"), "sha256": None, "size": None},
        },
    }
    roots, sums = ensure_archives(cfg, progress=False, download_kwargs={"backoff": 0.01})
    assert roots[0] == (tmp_path / "data/extracted/toy").resolve()
    assert (roots[0] / "inner/x.txt").read_bytes() == b"x"
    assert roots[1] == (tmp_path / "data/archives").resolve()
    assert sums["toy.zip"]["source"] == "published"
    assert sums["list.csv"]["sha256"] == _sha(b"a,b\n")
    n = len(server.requests)
    ensure_archives(cfg, progress=False)
    assert len(server.requests) == n


def test_ensure_archives_use_existing_touches_nothing(tmp_path):
    mine = tmp_path / "my_copy"
    mine.mkdir()
    cfg = {"name": "toy", "root": str(tmp_path / "data"), "use_existing": str(mine),
           "archives": {"z": {"url": "http://127.0.0.1:9/never", "sha256": None, "size": None}}}
    roots, _ = ensure_archives(cfg, progress=False)
    assert roots == [mine.resolve()]
    assert not (tmp_path / "data").exists()
    cfg["use_existing"] = str(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="nope"):
        ensure_archives(cfg, progress=False)


def test_record_survives_concurrent_style_updates(server, tmp_path):
    record = tmp_path / "checksums.json"
    for i in range(3):
        data = os.urandom(100)
        download(server.add(f"f{i}", data), tmp_path / f"f{i}", checksum_record=record, **FAST)
    assert sorted(load_checksum_record(record)) == ["f0", "f1", "f2"]

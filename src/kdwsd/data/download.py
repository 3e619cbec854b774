"""Download, verify and unpack dataset archives.

Used by every real dataset (COCO 2014, NUS-WIDE, PASCAL VOC 2007):

* :func:`download` — HTTP(S) with resume of partial files (``Range`` requests into ``<dest>.part``), retries
  with exponential backoff, optional mirrors, a progress bar, size / md5 / sha256 verification and atomic
  placement (``os.replace`` of the finished ``.part`` file, so a half-downloaded file is never mistaken for
  a whole one). A file that fails verification is moved aside to ``<dest>.corrupt`` (never silently deleted
  or used) and :class:`ChecksumError` names the URL, the expected and actual values and where the bad file is.
  Where no checksum is published, the sha256 and size are computed at the first download and written to a
  JSON *checksum record*; every later call verifies the file against that record.
* :func:`extract` — zip / tar / tar.gz into a folder, atomically (into a temporary sibling folder, then one
  rename), safely (absolute paths, ``..`` members, links out of the folder and device files are refused) and
  idempotently (a marker file inside the folder; a second call does nothing).
* :func:`ensure_archives` — the config-level helper: verify (or download) every archive of a dataset config
  and extract it; or, with ``use_existing``, return the user's folder untouched (nothing is copied).

Checksum record format (``<root>/checksums.json``)::

    {"version": 1,
     "files": {"train2014.zip": {"url": ..., "sha256": ..., "size": ..., "md5": ...,
                                 "source": "published" | "recorded at first download",
                                 "recorded_at": "2026-01-01T00:00:00+00:00"}}}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import requests
import urllib3

try:  # POSIX advisory locks for the checksum record (parallel Snakemake jobs share it)
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ArchiveTooLargeError",
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "archive_path",
    "download",
    "ensure_archives",
    "extract",
    "file_digest",
    "load_checksum_record",
    "verify_file",
]

log = logging.getLogger(__name__)

#: HTTP statuses worth retrying (transient); every other status >= 400 fails at once.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Marker written inside a folder produced by :func:`extract`.
EXTRACT_MARKER = ".kdwsd-extracted.json"
#: Archive suffixes that :func:`ensure_archives` unpacks (anything else is used as a plain file).
#: Default bound of :func:`extract`: expanded bytes / archive bytes. Dataset archives hold JPEGs (~1x); text
#: archives (NUS-WIDE tags) reach ~10x; archive bombs 1000x and more.
DEFAULT_MAX_RATIO = 100.0
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class DownloadError(RuntimeError):
    """A download failed for good (HTTP error, retries exhausted, no URL)."""


class ChecksumError(DownloadError):
    """A file does not match its expected size / md5 / sha256.

    Attributes:
        url: where the file came from (may be ``None`` for a local file).
        kind: ``"size"``, ``"md5"`` or ``"sha256"``.
        expected: the expected value.
        actual: the value found.
        corrupt_path: where the bad file was moved (kept for inspection).
        origin: where the expected value comes from (config, checksum record), if known.
    """

    def __init__(
        self,
        url: str | None,
        kind: str,
        expected: Any,
        actual: Any,
        corrupt_path: Path,
        origin: str | None = None,
    ) -> None:
        self.url = url
        self.kind = kind
        self.expected = expected
        self.actual = actual
        self.corrupt_path = corrupt_path
        self.origin = origin
        super().__init__(
            f"checksum mismatch for {url or corrupt_path.name}: expected {kind} {expected}"
            f"{f' (from {origin})' if origin else ''}, got {actual}; "
            f"the bad file was kept at {corrupt_path} (delete it and rerun to download again)"
        )


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the extraction folder (zip-slip) or is a device/link."""


class ArchiveTooLargeError(UnsafeArchiveError):
    """An archive expands past ``max_expanded_bytes`` or ``max_ratio`` x its own size (an archive bomb)."""


# --------------------------------------------------------------------------------------------------
# hashing and the checksum record
# --------------------------------------------------------------------------------------------------
def file_digest(path: Path | str, algorithms: Sequence[str] = ("sha256",), chunk_size: int = 1 << 20) -> dict:
    """Return ``{algorithm: hexdigest}`` of a file, read once in chunks."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            for h in hashers.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashers.items()}


def load_checksum_record(path: Path | str | None) -> dict[str, dict[str, Any]]:
    """Read a checksum record -> ``{file name: entry}`` (empty when the file does not exist)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"checksum record {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise ValueError(f"checksum record {path}: expected an object with a 'files' object")
    return doc["files"]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<path>.lock`` (no-op where fcntl is unavailable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _record_entry(record_path: Path, key: str, entry: Mapping[str, Any]) -> None:
    """Insert or update one entry of the checksum record (locked read-modify-write, atomic replace)."""
    with _locked(record_path):
        files = load_checksum_record(record_path)
        old = files.get(key, {})
        new = {**old, **{k: v for k, v in entry.items() if v is not None}}
        if new == old:
            return
        files[key] = new
        tmp = record_path.with_name(record_path.name + ".tmp")
        tmp.write_text(json.dumps({"version": 1, "files": dict(sorted(files.items()))}, indent=2) + "\n")
        os.replace(tmp, record_path)


def _move_aside(path: Path, final_name: str) -> Path:
    """Move a bad file to ``<final_name>.corrupt`` next to it (replacing an older one) and return it."""
    corrupt = path.with_name(final_name + ".corrupt")
    os.replace(path, corrupt)
    return corrupt


def verify_file(
    path: Path | str,
    *,
    sha256: str | None = None,
    size: int | None = None,
    md5: str | None = None,
    url: str | None = None,
    final_name: str | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """Check a file against the expected size / md5 / sha256.

    Returns ``{"size": int, "sha256": str, "md5": str}`` of the file (sha256 and md5 always computed, in one
    pass). On a mismatch the file is moved to ``<final_name>.corrupt`` next to it and :class:`ChecksumError`
    is raised; ``origin`` (where the expected values come from) is named in its message.
    """
    path = Path(path)
    final_name = final_name or path.name
    actual_size = path.stat().st_size
    if size is not None and actual_size != int(size):
        raise ChecksumError(url, "size", int(size), actual_size, _move_aside(path, final_name), origin)
    digests = file_digest(path, ("sha256", "md5"))
    if md5 is not None and digests["md5"] != md5.lower():
        raise ChecksumError(url, "md5", md5.lower(), digests["md5"], _move_aside(path, final_name), origin)
    if sha256 is not None and digests["sha256"] != sha256.lower():
        raise ChecksumError(url, "sha256", sha256.lower(), digests["sha256"], _move_aside(path, final_name),
                            origin)
    return {"size": actual_size, **digests}


# --------------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------------
class _RetryableError(Exception):
    """A transient failure: retry (after a backoff unless bytes arrived). ``written``: bytes received."""

    def __init__(self, message: str, written: int = 0) -> None:
        super().__init__(message)
        self.written = written


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSAT = re.compile(r"bytes\s+\*/(\d+)")
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              urllib3.exceptions.HTTPError)


def _fetch_once(
    session: requests.Session,
    url: str,
    part: Path,
    timeout: float,
    chunk_size: int,
    bar: Any,
) -> None:
    """One HTTP attempt appending to ``part``; returns when the server's response was received whole.

    Bytes are taken from the raw stream (no content decoding, ``Accept-Encoding: identity``) so that the
    file on disk is byte-identical to the server's and ``Range`` offsets stay valid.

    Raises :class:`_RetryableError` for transient failures (with the number of bytes that did arrive) and
    :class:`DownloadError` for permanent ones.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    written = 0
    try:
        with session.get(url, headers=headers, stream=True, timeout=timeout) as r:
            if r.status_code == 416 and offset:
                m = _CONTENT_RANGE_UNSAT.match(r.headers.get("Content-Range", ""))
                if m and int(m.group(1)) == offset:
                    return  # the partial file already holds the whole file
                log.warning("%s: server refused to resume at byte %d; restarting from 0", url, offset)
                part.unlink()
                raise _RetryableError("range not satisfiable")
            if r.status_code in RETRYABLE_STATUS:
                raise _RetryableError(f"HTTP {r.status_code}")
            if r.status_code >= 400:
                raise DownloadError(f"download of {url} failed: HTTP {r.status_code} {r.reason}")
            declared: int | None = None
            if r.status_code == 206 and offset:
                m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    log.warning("%s: unexpected Content-Range %r; restarting from 0", url,
                                r.headers.get("Content-Range"))
                    part.unlink()
                    raise _RetryableError("bad Content-Range")
                declared = int(m.group(2)) - offset + 1
                if m.group(3) != "*" and bar.total is None:
                    bar.total = int(m.group(3))
                mode = "ab"
            else:
                if offset:
                    log.warning("%s: server ignored the Range request; restarting from 0", url)
                    offset = 0
                mode = "wb"
                if "Content-Length" in r.headers:
                    declared = int(r.headers["Content-Length"])
                    if bar.total is None:
                        bar.total = declared
                else:
                    log.warning("%s: the server sends no Content-Length; a cut connection cannot be told "
                                "from the end of the file (the checksum check will tell)", url)
            bar.n = offset
            bar.refresh()
            with open(part, mode) as f:
                for block in r.raw.stream(chunk_size, decode_content=False):
                    if block:
                        f.write(block)
                        written += len(block)
                        bar.update(len(block))
            if declared is not None and written < declared:
                raise _RetryableError(f"connection closed after {written} of {declared} bytes", written)
    except _TRANSIENT as exc:
        raise _RetryableError(f"{type(exc).__name__}: {exc}", written) from exc


def download(
    url: str | None,
    dest: Path | str,
    sha256: str | None = None,
    size: int | None = None,
    *,
    md5: str | None = None,
    mirrors: Sequence[str] = (),
    retries: int = 5,
    backoff: float = 2.0,
    max_backoff: float = 60.0,
    timeout: float = 60.0,
    progress: bool = True,
    checksum_record: Path | str | None = None,
    chunk_size: int = 1 << 20,
    session: requests.Session | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resumable, verified, atomic) and return ``dest``.

    Args:
        url: the primary URL; ``None`` when the file cannot be fetched automatically (then ``dest`` must
            already exist, e.g. placed there by the user).
        dest: the final path. The download goes to ``<dest>.part`` and is renamed into place only after
            it has passed verification.
        sha256, size, md5: expected values where published. When ``sha256`` is ``None`` the value in
            ``checksum_record`` (if any) is used; when neither is known the file's sha256 and size are
            recorded there.
        mirrors: further URLs tried in order when ``url`` fails after its retries.
        retries: how many times a transient failure *without progress* is retried (a dropped connection
            that delivered bytes resumes immediately and does not use up a retry).
        backoff, max_backoff: the wait before retry ``k`` is ``min(backoff * 2**(k-1), max_backoff)`` seconds.
        timeout: seconds for the connection and between received bytes.
        progress: show a tqdm progress bar on stderr.
        checksum_record: JSON record of checksums (see module docstring); ``None`` disables recording.

    If ``dest`` exists it is verified (no network) and returned. Raises :class:`ChecksumError` on a
    mismatch (the bad file is moved to ``<dest>.corrupt``) and :class:`DownloadError` when every URL fails
    (the ``.part`` file is kept, so a rerun resumes).
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    record_path = Path(checksum_record) if checksum_record is not None else None
    recorded = load_checksum_record(record_path).get(dest.name, {})
    exp_sha = sha256 or recorded.get("sha256") or None
    exp_size = size if size is not None else recorded.get("size")
    exp_md5 = md5 or recorded.get("md5") or None
    published = sha256 is not None
    origin = "the published value" if published else (f"the checksum record {record_path}" if recorded else None)
    urls = [u for u in (url, *mirrors) if u]

    def finish(path: Path) -> Path:
        facts = verify_file(path, sha256=exp_sha, size=exp_size, md5=exp_md5, url=url, final_name=dest.name,
                            origin=origin)
        if path != dest:
            os.replace(path, dest)
        if record_path is not None:
            _record_entry(record_path, dest.name, {
                "url": url, "sha256": facts["sha256"], "size": facts["size"], "md5": facts["md5"],
                "source": "published" if published else recorded.get("source", "recorded at first download"),
                "recorded_at": recorded.get("recorded_at") or datetime.now(UTC).isoformat(timespec="seconds"),
            })
            if not exp_sha:
                log.info("%s: no published checksum; recorded sha256 %s in %s", dest.name, facts["sha256"],
                         record_path)
        return dest

    if dest.exists():
        log.info("%s exists; verifying it (no download)", dest)
        return finish(dest)
    if not urls:
        dest.parent.mkdir(parents=True, exist_ok=True)  # so the user can drop the file right there
        raise DownloadError(
            f"{dest} does not exist and no URL is configured for it: fetch it yourself and place it at "
            f"{dest} (see docs/datasets.md), or point the dataset's 'use_existing' at your copy"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if exp_size is not None and part.exists() and part.stat().st_size > exp_size:
        log.warning("%s is larger than the expected %d bytes; starting over", part, exp_size)
        part.unlink()
    own_session = session is None
    session = session or requests.Session()
    errors: list[str] = []
    try:
        with tqdm(total=exp_size, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                  disable=not progress, file=sys.stderr, leave=False) as bar:
            for u in urls:
                failures = 0
                while True:
                    if exp_size is not None and part.exists() and part.stat().st_size == exp_size:
                        return finish(part)  # a previous run already fetched every byte
                    before = part.stat().st_size if part.exists() else 0
                    try:
                        _fetch_once(session, u, part, timeout, chunk_size, bar)
                    except _RetryableError as exc:
                        # progress = the partial file grew (a server that ignores Range and keeps dropping
                        # the connection restarts from 0 every time: that is no progress)
                        made_progress = exc.written > 0 and part.exists() and part.stat().st_size > before
                        failures = 0 if made_progress else failures + 1
                        log.warning("%s: %s (%s)", u, exc, "resuming" if made_progress else
                                    f"failure {failures} of {retries + 1}")
                        if failures > retries:
                            errors.append(f"{u}: {exc}")
                            break
                        if not made_progress:
                            time.sleep(min(backoff * 2 ** (failures - 1), max_backoff))
                        continue
                    except DownloadError as exc:
                        errors.append(str(exc))
                        break
                    return finish(part)
    finally:
        if own_session:
            session.close()
    kept = f"; the partial file {part} is kept, rerun to resume" if part.exists() else ""
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(errors) + kept)


# --------------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------------
def _check_member_name(name: str, archive: Path) -> None:
    """Refuse member names that are absolute or climb out of the extraction folder."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise UnsafeArchiveError(f"archive {archive} has a member with an absolute path: {name!r}")
    if ".." in PurePosixPath(norm).parts:
        raise UnsafeArchiveError(f"archive {archive} has a member that escapes the folder: {name!r}")


def _archive_kind(archive: Path) -> str:
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ValueError(f"{archive} is neither a zip nor a tar archive")


def _size_limit(archive: Path, max_expanded_bytes: int | None, max_ratio: float | None) -> int | None:
    limits = [int(max_expanded_bytes)] if max_expanded_bytes is not None else []
    if max_ratio is not None:
        limits.append(int(max_ratio * max(archive.stat().st_size, 1)))
    return min(limits) if limits else None


def _check_expanded(archive: Path, total: int, limit: int | None, what: str) -> None:
    if limit is not None and total > limit:
        raise ArchiveTooLargeError(
            f"archive {archive}: {what} {total} bytes, more than the limit of {limit} bytes (max_expanded_bytes / "
            f"max_ratio x the archive's {archive.stat().st_size} bytes); nothing was kept. If the archive is "
            f"genuine, raise the limit; otherwise delete it and download it again"
        )


def _extract_zip(archive: Path, target: Path, progress: bool, limit: int | None) -> int:
    from tqdm.auto import tqdm

    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member_name(info.filename, archive)
            mode = info.external_attr >> 16
            if (mode & 0o170000) == 0o120000:  # S_IFLNK: zip symlinks are not needed by any dataset
                raise UnsafeArchiveError(f"archive {archive} has a symbolic link member: {info.filename!r}")
        _check_expanded(archive, sum(i.file_size for i in infos), limit, "members declare")
        written = 0
        for info in tqdm(infos, desc=f"unzip {archive.name}", disable=not progress, file=sys.stderr,
                         leave=False):
            if info.is_dir():
                zf.extract(info, target)
                continue
            # Stream and count the bytes actually produced: a member may lie about its size.
            dest = target / info.filename  # names were checked above (no absolute paths, no "..")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    _check_expanded(archive, written, limit, "members expand to at least")
                    out.write(chunk)
        return len(infos)


_HAS_TAR_FILTER = hasattr(tarfile, "data_filter")  # Python >= 3.11.4 / 3.12


def _extract_tar(archive: Path, target: Path, progress: bool, limit: int | None) -> int:
    from tqdm.auto import tqdm

    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()  # reads (decompresses) the whole stream once, writing nothing
        _check_expanded(archive, sum(m.size for m in members if m.isfile()), limit, "members declare")
        for m in members:
            _check_member_name(m.name, archive)
            if m.isdev():
                raise UnsafeArchiveError(f"archive {archive} has a device member: {m.name!r}")
            if m.issym() or m.islnk():
                link = PurePosixPath(m.linkname.replace("\\", "/"))
                resolved = (PurePosixPath(m.name).parent / link) if m.issym() else link
                if link.is_absolute() or ".." in PurePosixPath(os.path.normpath(resolved)).parts:
                    raise UnsafeArchiveError(
                        f"archive {archive} has a link that points outside the folder: {m.name!r} -> "
                        f"{m.linkname!r}"
                    )
        for m in tqdm(members, desc=f"untar {archive.name}", disable=not progress, file=sys.stderr,
                      leave=False):
            try:
                if _HAS_TAR_FILTER:
                    tf.extract(m, target, filter="data")
                else:  # pragma: no cover - Python < 3.11.4; members were checked above
                    tf.extract(m, target)
            except tarfile.FilterError as exc:
                raise UnsafeArchiveError(f"archive {archive}: unsafe member {m.name!r}: {exc}") from exc
        return len(members)


def extract(
    archive: Path | str,
    dest_dir: Path | str,
    *,
    sha256: str | None = None,
    progress: bool = True,
    max_expanded_bytes: int | None = None,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
) -> Path:
    """Unpack a zip / tar(.gz/.bz2/.xz) archive into ``dest_dir`` atomically and return ``dest_dir``.

    The archive is unpacked into ``<dest_dir>.partial`` next to it and renamed to ``dest_dir`` once
    complete, so ``dest_dir`` either does not exist or holds the whole archive. A marker file
    (:data:`EXTRACT_MARKER`) records which archive (name, size and, when given, ``sha256``) produced it; a
    second call with the same archive returns at once. Refuses (:class:`UnsafeArchiveError`) absolute member
    paths, ``..`` members, links pointing outside the folder and device files, before anything is written.

    Archive bombs: the expanded size (sum of the members' declared sizes, checked before anything is written;
    for zip also counted while streaming, for members that lie) may not exceed ``max_expanded_bytes`` nor
    ``max_ratio`` x the archive's size (dataset archives of JPEGs expand ~1x; None disables either bound).

    Raises:
        FileExistsError: ``dest_dir`` exists but was not produced from this archive.
        ArchiveTooLargeError: the archive expands past a bound (nothing is kept).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    stat = archive.stat()
    marker = dest_dir / EXTRACT_MARKER
    if dest_dir.exists():
        try:
            info = json.loads(marker.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            info = None
        same = bool(info) and info.get("archive") == archive.name and info.get("size") == stat.st_size
        if same and sha256 and info.get("sha256") and info["sha256"] != sha256.lower():
            same = False
        if same:
            log.info("%s already extracted into %s", archive.name, dest_dir)
            return dest_dir
        raise FileExistsError(
            f"{dest_dir} exists but was not extracted from {archive} (marker {marker} missing or for "
            f"another archive or version); remove it and rerun"
        )
    kind = _archive_kind(archive)
    tmp = dest_dir.with_name(dest_dir.name + ".partial")
    if tmp.exists():
        log.warning("removing an interrupted extraction at %s", tmp)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        limit = _size_limit(archive, max_expanded_bytes, max_ratio)
        n = (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp, progress, limit)
        (tmp / EXTRACT_MARKER).write_text(json.dumps({
            "archive": archive.name, "size": stat.st_size, "sha256": sha256.lower() if sha256 else None,
            "members": n,
            "extracted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }, indent=2) + "\n")
        os.rename(tmp, dest_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("extracted %d members of %s into %s", n, archive.name, dest_dir)
    return dest_dir


# --------------------------------------------------------------------------------------------------
# config-level helper
# --------------------------------------------------------------------------------------------------
def archive_path(root: Path | str, key: str, spec: Mapping[str, Any]) -> Path:
    """Where archive ``key`` of a dataset config lives: ``<root>/archives/<filename>``.

    ``filename`` defaults to the last component of ``url``; an entry without a URL must give it.
    """
    filename = spec.get("filename") or (spec.get("url") or "").rstrip("/").rsplit("/", 1)[-1]
    if not filename:
        raise KeyError(f"dataset archive '{key}': give 'filename' when 'url' is empty")
    return Path(root) / "archives" / filename


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def ensure_archives(
    dataset_cfg: Mapping[str, Any],
    *,
    progress: bool = True,
    download_kwargs: Mapping[str, Any] | None = None,
) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """Make a dataset's files available and return ``(roots, checksums)``.

    ``dataset_cfg`` is the ``dataset:`` section of a config: ``root`` (default ``data/<name>``),
    ``use_existing`` (a folder or list of folders, or ``None``) and ``archives`` (``key -> {url, sha256,
    size[, md5, filename, mirrors]}``).

    * ``use_existing`` set: returns those folders (nothing is downloaded, copied or extracted) and the
      checksum record's content (usually empty).
    * otherwise: each archive is verified (downloaded if absent; in the workflow the download rule has
      already fetched it) against its published checksum or the record in ``<root>/checksums.json``, then
      extracted into ``<root>/extracted/<archive stem>/`` within the size bounds ``max_archive_ratio`` /
      ``max_expanded_bytes`` (see :func:`extract`); a file that is not an archive (e.g. a CSV) is
      used where it is. The roots are those folders (for plain files, their parent folder).
    """
    name = dataset_cfg.get("name", "dataset")
    root = Path(dataset_cfg.get("root") or f"data/{name}")
    record = root / "checksums.json"
    existing = dataset_cfg.get("use_existing")
    if existing:
        paths = [Path(p) for p in ([existing] if isinstance(existing, str | os.PathLike) else existing)]
        for p in paths:
            if not p.exists():
                raise FileNotFoundError(f"dataset '{name}': use_existing path {p} does not exist")
        return [p.resolve() for p in paths], load_checksum_record(record)
    roots: list[Path] = []
    for key, spec in (dataset_cfg.get("archives") or {}).items():
        path = archive_path(root, key, spec)
        download(spec.get("url"), path, spec.get("sha256"), spec.get("size"), md5=spec.get("md5"),
                 mirrors=spec.get("mirrors") or (), progress=progress, checksum_record=record,
                 **dict(download_kwargs or {}))
        if _is_archive(path):
            digest = load_checksum_record(record).get(path.name, {}).get("sha256")
            roots.append(extract(path, root / "extracted" / _stem(path), sha256=digest, progress=progress,
                                 max_expanded_bytes=dataset_cfg.get("max_expanded_bytes"),
                                 max_ratio=dataset_cfg.get("max_archive_ratio", DEFAULT_MAX_RATIO)).resolve())
        else:
            roots.append(path.parent.resolve())
    return roots, load_checksum_record(record)

"""A tiny threaded HTTP file server on 127.0.0.1 for the download / dataset tests.

Serves in-memory files, honours single ``Range: bytes=a-b`` requests (206 / 416), and can be told to

* drop the connection after N body bytes on the first request for a path (``drop_after``), or on every
  request (``drop_always``),
* ignore ``Range`` headers for a path (``ignore_range``: always a full 200 response), and
* serve different bytes than the registered file (``wrong_content``), e.g. to trigger a checksum mismatch.

Every request is logged (:class:`RequestLog`) so tests can assert on ``Range`` headers and bytes sent.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class RequestLog:
    """One request: path, the Range header (or None), the status sent and the body bytes written."""

    path: str
    range: str | None
    status: int
    bytes_sent: int


class FileServer:
    """In-memory file server; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}
        self.drop_always: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.wrong_content: dict[str, bytes] = {}
        self.fail_status: dict[str, int] = {}
        self.requests: list[RequestLog] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- registration -------------------------------------------------------------------------------
    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` (leading slash optional); returns its URL."""
        path = "/" + path.lstrip("/")
        self.files[path] = data
        return self.url(path)

    def add_file(self, path: str, local: Path) -> str:
        """Serve the content of a local file at ``path``; returns its URL."""
        return self.add(path, Path(local).read_bytes())

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{path.lstrip('/')}"

    # -- accounting ---------------------------------------------------------------------------------
    def requests_for(self, path: str) -> list[RequestLog]:
        path = "/" + path.lstrip("/")
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def bytes_sent(self, path: str) -> int:
        return sum(r.bytes_sent for r in self.requests_for(path))

    def _log(self, entry: RequestLog) -> None:
        with self._lock:
            self.requests.append(entry)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FileServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # silence stderr noise
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                rng = self.headers.get("Range")
                if path in server.fail_status:
                    status = server.fail_status[path]
                    server._log(RequestLog(path, rng, status, 0))  # log first: the client may be faster
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path not in server.files:
                    server._log(RequestLog(path, rng, 404, 0))
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.wrong_content.get(path, server.files[path])
                total = len(data)
                start, end, status = 0, total - 1, 200
                if rng and path not in server.ignore_range:
                    m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
                    if m and m.group(1):
                        start = int(m.group(1))
                        end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
                        if start >= total:
                            server._log(RequestLog(path, rng, 416, 0))
                            self.send_response(416)
                            self.send_header("Content-Range", f"bytes */{total}")
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return
                        status = 206
                body = data[start : end + 1]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
                self.end_headers()
                with server._lock:
                    cut = server.drop_after.pop(path, None)
                    if cut is None:
                        cut = server.drop_always.get(path)
                if cut is not None and cut < len(body):
                    server._log(RequestLog(path, rng, status, cut))
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                server._log(RequestLog(path, rng, status, len(body)))
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""A file server on 127.0.0.1 (never the internet) for the download tests, with hostile behaviours
switched on per path: cut transfers, Range ignored or answered from byte 0, chunked bodies cut
mid-way, bodies without a length, any Content-Type."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves ``files`` (path -> bytes) with Range support; misbehaves on demand (see the fields)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}  # path -> send this many bytes once, then close
        self.ignore_range = False
        self.range_from_zero: set[str] = set()  # answer a Range with 206 "bytes 0-..." (the whole file)
        self.chunked_cut: dict[str, int] = {}  # path -> chunked body cut after this many bytes, once
        self.no_length: set[str] = set()  # no Content-Length, body ends when the connection closes
        self.content_type: dict[str, str] = {}  # path -> Content-Type (default application/octet-stream)
        self.content_range: dict[str, str] = {}  # path -> the Content-Range a 206 claims, whatever it sends
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                server.answer(self, self.path, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def _span(self, handler: BaseHTTPRequestHandler, path: str, body: bytes) -> tuple[int, int, int]:
        """(status, first byte sent, first byte named in Content-Range)."""
        rng = handler.headers.get("Range")
        if not rng or self.ignore_range:
            return 200, 0, 0
        start = int(rng.removeprefix("bytes=").rstrip("-"))
        return (206, 0, 0) if path in self.range_from_zero else (206, start, start)

    def answer(self, handler: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        status, start, named = self._span(handler, path, body)
        handler.send_response(status)
        handler.send_header("Content-Type", self.content_type.get(path, "application/octet-stream"))
        if path in self.chunked_cut:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            data = body[start:start + self.chunked_cut.pop(path)]
            handler.wfile.write(f"{len(body) - start:x}\r\n".encode() + data)  # promises more than it sends
            handler.close_connection = True
            return
        if path not in self.no_length:
            handler.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            claimed = self.content_range.get(path, f"bytes {named}-{len(body) - 1}/{len(body)}")
            handler.send_header("Content-Range", claimed)
        handler.end_headers()
        cut = self.cut_after.pop(path, None)
        handler.wfile.write(body[start:] if cut is None else body[start:start + cut])
        handler.close_connection = True

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""A PACS that misbehaves on demand: an HTTP proxy in front of the real Orthanc that passes
requests through (credentials included, so Orthanc itself judges them) or, by ``mode``,
answers 500 to everything, stalls past the client's timeout, drops the connection, or
refuses STOW-RS stores while reads still work."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

MODES = ("pass", "error", "slow", "drop", "refuse_store")
_FORWARDED = ("authorization", "accept", "content-type")


class FaultyPacs:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.stall_s = 3.0
        self.stores = 0  # STOW-RS requests that reached Orthanc
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else self._read_chunked()
                mode = proxy.mode
                if mode == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if mode == "slow":
                    time.sleep(proxy.stall_s)
                if mode == "error":
                    self._answer(500, b"internal error of the PACS: Quixote^Alonso", "text/plain")
                    return
                if mode == "refuse_store" and self.command == "POST":
                    self._answer(409, b'{"message": "refused"}', "application/json")
                    return
                if self.command == "POST":
                    proxy.stores += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() in _FORWARDED}
                with httpx.Client(timeout=30.0) as client:
                    upstream = client.request(
                        self.command, proxy.upstream + self.path, content=body, headers=headers
                    )
                self._answer(
                    upstream.status_code,
                    upstream.content,
                    upstream.headers.get("content-type", "application/octet-stream"),
                )

            def _read_chunked(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() != "chunked":
                    return b""
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()

            def _answer(self, status: int, content: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except OSError:
                    pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[FaultyPacs]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

"""uvicorn's httptools protocol with a bound on request heads and JSON protocol errors.

httptools buffers a request's head without limit: a client can send megabytes of headers
(or thousands of them) and the server keeps them all in memory before the app sees the
request. ``LimitedHttpToolsProtocol`` refuses a head over ``MAX_HEAD_BYTES`` (request line
and headers, counted while they stream in) or with more than ``MAX_HEADERS`` headers with 431
``headers_too_large``, and answers requests the parser rejects (a raw non-ASCII byte in the
path, a bad chunk size...) with 400 ``invalid_request``, both in the service's JSON error
shape instead of uvicorn's plain text. A head that is still incomplete ``head_timeout_s``
after its first byte (slow-loris: headers trickled in to hold connections open; uvicorn
has no such timeout) gets 408 ``request_timeout``; ``limited_protocol`` sets that timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.plumbing.errors import APIError, error_body

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # nginx allows 4 x 8 KiB; Apache 8 KiB per line
MAX_HEADERS = 100  # Apache's LimitRequestFields


class _HeadTooLarge(Exception):
    """Raised inside a parser callback; httptools turns it into a parser error."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    head_timeout_s: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0
        self._rejection: APIError | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._rejection = APIError(
                "request_timeout",
                f"the request's headers did not arrive within {self.head_timeout_s:g}s",
                {"received_bytes": self._head_bytes},
            )
            self.send_400_response("head timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_bytes += len(name) + len(value) + 4
        if len(self.headers) > MAX_HEADERS:
            self._reject(f"the request has more than {MAX_HEADERS} headers")
        if self._head_bytes > MAX_HEAD_BYTES:
            self._reject(f"the request's headers are over {MAX_HEAD_BYTES} bytes")

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Still inside the head after this chunk: every byte of it was head. (The chunk that
        # completes the head is not counted, so body bytes never count against the limit.)
        if self._in_head and self.parser is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._rejection = self._head_error(
                    f"the request's head is over {MAX_HEAD_BYTES} bytes"
                )
                self.send_400_response("head too large")

    def _reject(self, message: str) -> None:
        self._rejection = self._head_error(message)
        raise _HeadTooLarge(message)

    @staticmethod
    def _head_error(message: str) -> APIError:
        return APIError(
            "headers_too_large",
            message,
            {"max_head_bytes": MAX_HEAD_BYTES, "max_headers": MAX_HEADERS},
        )

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for requests its parser refuses; answer in the JSON shape."""
        error = self._rejection or APIError(
            "invalid_request", "the request is not valid HTTP/1.1", {"reason": msg}
        )
        self._rejection = None
        self._in_head = False
        log.warning("refused a request from %s: %s", self.client, error.message)
        body = orjson.dumps(error_body(error))
        head = [STATUS_LINE[error.status_code]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()


def limited_protocol(head_timeout_s: float) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with this head timeout."""
    return type(
        "LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"head_timeout_s": head_timeout_s}
    )

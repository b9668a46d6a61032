"""A small raw-socket HTTP/1.1 client, so malformed requests really go out malformed.

httpx and requests normalise what they send (they percent-encode paths, fix Content-Length,
refuse odd headers); this client writes exactly the bytes it is given, can send a body
chunked, trickle it slowly or send only part of it, and stops sending the moment the server
answers. Every call has a hard deadline, so a server that hangs fails the test instead of
hanging it.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Transfer = Literal["length", "chunked", "slow", "slow_head", "partial"]


class NoResponse(Exception):
    """The server closed the connection or the deadline passed without a full response."""


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    elapsed_s: float

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in reversed(self.headers):
            if key.lower() == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def build_head(
    method: str, target: str, headers: Sequence[tuple[str, str]], host: str, port: int
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _pieces(body: bytes, transfer: Transfer) -> Iterator[tuple[bytes, float]]:
    """(bytes to send, seconds to wait before sending them)."""
    if transfer == "length":
        yield body, 0.0
    elif transfer == "chunked":
        for chunk in _chunks(body, 64 * 1024):
            yield chunk, 0.0
    elif transfer == "partial":  # the server should answer from the headers alone
        yield body[:1024], 0.0
    elif transfer in ("slow", "slow_head"):  # one byte every 0.25 s, up to the deadline
        for index in range(len(body)):
            yield body[index : index + 1], 0.25
    else:
        raise ValueError(f"unknown transfer {transfer!r}")


def send_raw(
    host: str,
    port: int,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    transfer: Transfer = "length",
    timeout_s: float = 15.0,
) -> RawResponse:
    """Send one request on a fresh connection and read the response, within ``timeout_s``."""
    headers = list(headers)
    # Unless the caller frames the body itself (possibly wrongly, on purpose).
    framed = {name.lower() for name, _ in headers} & {"content-length", "transfer-encoding"}
    if not framed:
        length = ("Transfer-Encoding", "chunked") if transfer == "chunked" else None
        headers.append(length or ("Content-Length", str(len(body))))
    started = time.monotonic()
    deadline = started + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        received = bytearray()
        try:
            head = build_head(method, target, headers, host, port)
            if transfer == "slow_head":  # the request line at once, then the headers trickle
                line_end = head.index(b"\r\n") + 2
                sock.sendall(head[:line_end])
                body, transfer = head[line_end:] + body, "slow"
            else:
                sock.sendall(head)
            for piece, delay in _pieces(body, transfer):
                if _wait_readable(sock, min(delay, max(deadline - time.monotonic(), 0))):
                    break  # the server has answered (or closed): stop sending
                if time.monotonic() >= deadline:
                    break
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading; its answer may still be in our buffer
        return _read_response(sock, received, deadline, started)


def _wait_readable(sock: socket.socket, seconds: float) -> bool:
    readable, _, _ = select.select([sock], [], [], seconds)
    return bool(readable)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise NoResponse("deadline passed before the response was complete")
    sock.settimeout(remaining)
    try:
        return sock.recv(65536)
    except TimeoutError:
        raise NoResponse("deadline passed before the response was complete") from None
    except ConnectionResetError:
        return b""


def _read_response(
    sock: socket.socket, buffer: bytearray, deadline: float, started: float
) -> RawResponse:
    while b"\r\n\r\n" not in buffer:
        data = _recv(sock, deadline)
        if not data:
            raise NoResponse(f"connection closed after {len(buffer)} bytes of response head")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = status_line.split(" ", 2)
    headers = [tuple(line.split(":", 1)) for line in header_lines if ":" in line]
    parsed = [(name.strip(), value.strip()) for name, value in headers]
    body = bytearray(rest)
    lookup = {name.lower(): value for name, value in parsed}
    if "content-length" in lookup:
        length = int(lookup["content-length"])
        while len(body) < length:
            data = _recv(sock, deadline)
            if not data:
                raise NoResponse(f"connection closed after {len(body)} of {length} body bytes")
            body += data
        content = bytes(body[:length])
    elif lookup.get("transfer-encoding", "").lower() == "chunked":
        content = _read_chunked(sock, body, deadline)
    else:
        while data := _recv(sock, deadline):
            body += data
        content = bytes(body)
    return RawResponse(
        int(status), reason[0] if reason else "", parsed, content, time.monotonic() - started
    )


def _read_chunked(sock: socket.socket, buffer: bytearray, deadline: float) -> bytes:
    out = bytearray()
    while True:
        while b"\r\n" not in buffer:
            buffer += _recv_or_fail(sock, deadline)
        line, _, rest = bytes(buffer).partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        buffer[:] = rest
        if size == 0:
            return bytes(out)
        while len(buffer) < size + 2:
            buffer += _recv_or_fail(sock, deadline)
        out += buffer[:size]
        buffer[:] = buffer[size + 2 :]


def _recv_or_fail(sock: socket.socket, deadline: float) -> bytes:
    data = _recv(sock, deadline)
    if not data:
        raise NoResponse("connection closed inside a chunked response")
    return data

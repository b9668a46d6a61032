"""Structured logging and the request context middleware.

Every request gets an id (the client's ``X-Request-ID`` when it is sane, else a new one),
echoed in the response, stored in ``request.state.request_id`` and attached to every log
record emitted while it is handled. One access log line per request, as text or JSON.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import re
import secrets
import sys
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model.log_setup import TEXT_FORMAT
from service.plumbing.metrics import ServiceMetrics

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
access_log = logging.getLogger("rectifier.access")

# A random per-process prefix and a counter: unique, and far cheaper than uuid4 per request.
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(f"%(asctime)s {TEXT_FORMAT}")  # the commands' line, timed

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} [request {request_id}]" if request_id else text


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send every logger (uvicorn's included) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log replaces it


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Request id, access log and HTTP metrics, as plain ASGI (no per-request task)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, log_access: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            method = scope["method"]
            self.metrics.observe_http(method, route, status, elapsed)
            if self.log_access:
                _log_access(scope, status, elapsed)
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _REQUEST_ID.match(text) else None
    return None


def _log_access(scope: Scope, status: int, elapsed: float) -> None:
    client = scope.get("client")
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    if query:
        path = f"{path}?{query.decode('latin-1')}"
    access_log.info(
        '%s "%s %s" %d %.2fms',
        f"{client[0]}:{client[1]}" if client else "-",
        scope["method"],
        path,
        status,
        elapsed * 1000.0,
        extra={
            "method": scope["method"],
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(elapsed * 1000.0, 3),
            "client": client[0] if client else None,
        },
    )

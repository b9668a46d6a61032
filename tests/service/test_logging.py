from __future__ import annotations

import json
import logging

from service.plumbing.logging import (
    JSONFormatter,
    TextFormatter,
    _incoming_request_id,
    request_id_var,
)


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "rectifier.access", "levelname": "INFO", "msg": message})
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_request_id_and_extras():
    line = JSONFormatter().format(record("hello %s", request_id="abc-1", status=200))
    entry = json.loads(line)
    assert entry["message"] == "hello %s"
    assert entry["level"] == "INFO" and entry["logger"] == "rectifier.access"
    assert entry["request_id"] == "abc-1"
    assert entry["status"] == 200
    assert entry["time"].endswith("Z")


def test_text_lines_end_with_the_request_id():
    assert TextFormatter().format(record("served", request_id="r-9")).endswith("[request r-9]")
    assert "[request" not in TextFormatter().format(record("idle", request_id=None))


def test_request_id_filter_reads_the_context():
    from service.plumbing.logging import _RequestIdFilter

    token = request_id_var.set("ctx-7")
    try:
        rec = record("x")
        _RequestIdFilter().filter(rec)
        assert rec.request_id == "ctx-7"  # type: ignore[attr-defined]
    finally:
        request_id_var.reset(token)


def test_only_sane_client_request_ids_are_honoured():
    def scope(value: bytes) -> dict:
        return {"headers": [(b"x-request-id", value)]}

    assert _incoming_request_id(scope(b"trace-123:abc/def")) == "trace-123:abc/def"
    for bad in (b"", b"has space", b"x" * 129, b"caf\xc3\xa9", b"new\nline"):
        assert _incoming_request_id(scope(bad)) is None
    assert _incoming_request_id({"headers": []}) is None

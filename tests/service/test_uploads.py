from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.requests import Request

from bench.multipart_library import parse_multipart_library
from service.plumbing.errors import APIError
from service.protocols.v1.uploads import (
    header_params,
    images_from_multipart,
    parse_multipart,
    read_body,
)

CT = "multipart/form-data; boundary=XyZ"


@pytest.fixture(
    params=[parse_multipart, parse_multipart_library], ids=["hand-written", "python-multipart"]
)
def parse(request):
    """Each parser case runs on the service's parser and on python-multipart's (the
    multipart decision in docs/decisions.md: the service's must pass all the library does)."""
    return request.param


def form(*parts: tuple[str, bytes], boundary: str = "XyZ") -> bytes:
    body = b""
    for name, content in parts:
        body += (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="f.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode()


def test_matches_what_a_real_client_encodes(parse):
    request = httpx.Request(
        "POST",
        "http://x/",
        files=[("image", ("a.jpg", b"\xff\xd8one")), ("image", ("b.png", b"two\r\n--not"))],
        data={"note": "hi"},
    )
    body = request.read()
    assert images_from_multipart(body, request.headers["content-type"], parse) == [
        b"\xff\xd8one",
        b"two\r\n--not",
    ]


def test_binary_content_with_crlf_and_dashes_is_kept_exactly(parse):
    payload = b"\r\n--XyQ\r\n--Xy\r\n\x00\xff" * 10  # almost-boundaries
    assert images_from_multipart(form(("image", payload)), CT, parse) == [payload]


def test_preamble_and_epilogue_are_ignored(parse, request):
    if parse is parse_multipart_library:  # RFC 2046 allows a preamble; the library refuses it
        request.applymarker(pytest.mark.xfail(strict=True, raises=APIError))
    body = b"preamble text\r\n" + form(("image", b"abc")) + b"epilogue"
    assert images_from_multipart(body, CT, parse) == [b"abc"]


def test_quoted_boundary_and_parameters(parse):
    body = form(("image", b"abc"), boundary="a b;c")
    content_type = 'multipart/form-data; boundary="a b;c"'
    assert images_from_multipart(body, content_type, parse) == [b"abc"]
    assert header_params('form-data; name="im\\"g"; filename=x.jpg') == {
        "name": 'im"g',
        "filename": "x.jpg",
    }


def test_missing_image_field_lists_the_fields_found(parse):
    with pytest.raises(APIError) as info:
        images_from_multipart(form(("file", b"a"), ("photo", b"b")), CT, parse)
    assert info.value.code == "missing_image"
    assert info.value.detail == {"fields": ["file", "photo"]}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (form(("image", b"a")), "multipart/form-data"),  # no boundary
        (form(("image", b"a"), boundary="other"), CT),  # boundary not in the body
        (form(("image", b"a"))[:-9], CT),  # no closing boundary
        (b"--XyZ\r\nno separator here\r\n--XyZ--\r\n", CT),
        (b"--XyZ\r\nbad header line\r\n\r\nabc\r\n--XyZ--\r\n", CT),
        (b"--XyZjunk\r\n\r\nabc\r\n--XyZ--\r\n", CT),
    ],
    ids=["no-boundary", "wrong-boundary", "unclosed", "no-separator", "bad-header", "bad-line"],
)
def test_malformed_multipart_is_invalid_multipart(parse, body, content_type):
    with pytest.raises(APIError) as info:
        parse(body, content_type)
    assert info.value.code == "invalid_multipart"
    assert info.value.status_code == 400


def request_with(chunks: list[bytes], headers: dict[str, str]) -> Request:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope, receive)


def test_content_length_over_the_limit_is_refused_before_reading():
    request = request_with([], {"Content-Length": "2000"})  # receive would hang if called
    with pytest.raises(APIError) as info:
        asyncio.run(read_body(request, 1000, 5.0))
    assert info.value.code == "payload_too_large"


def test_chunked_body_over_the_limit_is_refused_while_streaming():
    request = request_with([b"x" * 600, b"x" * 600, b"x" * 600], {})
    with pytest.raises(APIError) as info:
        asyncio.run(read_body(request, 1000, 5.0))
    assert info.value.code == "payload_too_large"


def test_slow_body_times_out():
    request = request_with([b"x" * 10, b"x"], {})
    request._receive = _stalling(request._receive)
    with pytest.raises(APIError) as info:
        asyncio.run(read_body(request, 1000, 0.2))
    assert info.value.code == "request_timeout"


def _stalling(receive):
    calls = 0

    async def stalled() -> dict:
        nonlocal calls
        calls += 1
        if calls > 1:
            await asyncio.sleep(10)
        return await receive()

    return stalled


def test_body_within_limits_is_returned_whole():
    request = request_with([b"ab", b"cd", b"e"], {"Content-Length": "5"})
    assert asyncio.run(read_body(request, 1000, 5.0)) == b"abcde"

"""Read request bodies within limits, and take the images out of them.

Two forms: ``multipart/form-data`` with the field ``image`` (repeated for a batch), or the
raw image as the body with an ``image/*``, ``application/dicom`` (or
``application/octet-stream``) content type. The decoders tell the format from the bytes;
a body or part labelled ``application/dicom`` must also be DICOM, so a mislabelled upload
is refused with what it really is.
The size limit is checked from ``Content-Length`` before anything is read, and again
while a chunked body streams in. The multipart parser works on the whole (bounded) body
in memory: a few ``bytes.find`` calls, much cheaper per request than a streaming parser
with spooled temporary files.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from starlette.requests import Request

from model.decoding.sniff import describe_content, is_dicom
from service.plumbing.errors import APIError

IMAGE_FIELD = "image"
DICOM_TYPE = "application/dicom"
RAW_TYPES = frozenset({"application/octet-stream", DICOM_TYPE})
ACCEPTED = (
    "multipart/form-data (field 'image') or a raw image body "
    "(image/jpeg, image/png, ..., application/dicom)"
)

# RFC 2046 caps a boundary at 70 characters; 200 leaves room for lax clients.
MAX_BOUNDARY_LENGTH = 200
Part = tuple[dict[str, str], bytes]

_PARAM = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def header_params(value: str) -> dict[str, str]:
    """Parameters of a header such as ``form-data; name="image"; filename="a.jpg"``."""
    params = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key.lower()] = raw
    return params


async def read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The whole body, refused with 413 once it exceeds ``max_bytes`` (408 when too slow)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise APIError(
                "invalid_parameter", f"Content-Length {declared!r} is not a number"
            ) from None
        if length > max_bytes:
            raise _too_large(length, max_bytes)
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                total += len(chunk)
                if total > max_bytes:
                    raise _too_large(total, max_bytes, streaming=True)
                chunks.append(chunk)
    except TimeoutError:
        raise APIError(
            "request_timeout",
            f"the request body did not arrive within {timeout_s:g}s",
            {"received_bytes": total},
        ) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, streaming: bool = False) -> APIError:
    what = f"more than {limit}" if streaming else str(size)
    return APIError(
        "payload_too_large",
        f"the request body is {what} bytes; the limit is {limit}",
        {"max_bytes": limit},
    )


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split a ``multipart/form-data`` body into (headers, content) parts."""
    boundary = header_params(content_type).get("boundary", "")
    if not boundary or len(boundary) > MAX_BOUNDARY_LENGTH:
        raise APIError("invalid_multipart", "the multipart Content-Type has no valid boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise APIError(
            "invalid_multipart", "the body does not contain the boundary named in Content-Type"
        )
    parts = []
    position = start + len(delimiter)
    while not body.startswith(b"--", position):
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise APIError("invalid_multipart", "a multipart boundary line is malformed")
        content_start = line_end + 2
        next_delimiter = body.find(b"\r\n" + delimiter, content_start)
        if next_delimiter < 0:
            raise APIError("invalid_multipart", "the multipart body has no closing boundary")
        parts.append(_parse_part(body, content_start, next_delimiter))
        position = next_delimiter + 2 + len(delimiter)
    return parts


def _parse_part(body: bytes, start: int, end: int) -> Part:
    """The part in ``body[start:end]``, its content copied out once (a large upload is
    a few MB; slicing the part first and then its content would copy it twice)."""
    if body.startswith(b"\r\n", start, end):  # no headers at all
        return {}, body[start + 2 : end]
    header_end = body.find(b"\r\n\r\n", start, end)
    if header_end < 0:
        raise APIError("invalid_multipart", "a multipart part has no header/body separator")
    headers = {}
    for line in body[start:header_end].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            raise APIError("invalid_multipart", "a multipart part has a malformed header line")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    return headers, body[header_end + 4 : end]


def check_declared_dicom(data: bytes, content_type: str, where: str = "the body") -> None:
    """Refuse ``data`` labelled ``application/dicom`` that is not a DICOM file."""
    if media_type(content_type) == DICOM_TYPE and data and not is_dicom(data):
        raise APIError(
            "invalid_image",
            f"{where} is labelled {DICOM_TYPE} but is not a DICOM file (no 'DICM' marker at "
            f"byte 128): found {describe_content(data)}",
            {"format": describe_content(data)},
        )


def images_from_multipart(
    body: bytes,
    content_type: str,
    parse: Callable[[bytes, str], list[Part]] = parse_multipart,
) -> list[bytes]:
    """The ``image`` fields of a form; ``parse`` is swappable so that the parser tests and
    bench/multipart_cost.py hold python-multipart to the same cases."""
    images: list[bytes] = []
    others: list[str] = []
    for headers, content in parse(body, content_type):
        name = header_params(headers.get("content-disposition", "")).get("name")
        if name == IMAGE_FIELD:
            check_declared_dicom(
                content, headers.get("content-type", ""), f"image part {len(images) + 1}"
            )
            images.append(content)
        else:
            others.append(name if name is not None else "<unnamed>")
    if not images:
        found = f"; found fields: {', '.join(others)}" if others else "; the form is empty"
        raise APIError(
            "missing_image",
            f"no '{IMAGE_FIELD}' field in the multipart form{found}",
            {"fields": others},
        )
    return images


async def read_images(
    request: Request, *, max_bytes: int, max_images: int, timeout_s: float
) -> list[bytes]:
    """The encoded images of a predict request (multipart fields or the raw body)."""
    content_type = request.headers.get("content-type", "")
    kind = media_type(content_type)
    if kind == "multipart/form-data":
        body = await read_body(request, max_bytes, timeout_s)
        if not body:
            raise APIError("missing_image", "the request body is empty")
        images = images_from_multipart(body, content_type)
    elif kind.startswith("image/") or kind in RAW_TYPES:
        body = await read_body(request, max_bytes, timeout_s)
        if not body:
            raise APIError("missing_image", "the request body is empty: send the image bytes")
        check_declared_dicom(body, content_type)
        images = [body]
    elif (
        not kind
        and request.headers.get("content-length", "0") == "0"
        and ("transfer-encoding" not in request.headers)
    ):
        raise APIError("missing_image", f"no image in the request; send {ACCEPTED}")
    else:
        raise APIError(
            "unsupported_media_type",
            f"Content-Type {kind or '(none)'!r} is not accepted; send {ACCEPTED}",
            {"content_type": kind or None},
        )
    if len(images) > max_images:
        raise APIError(
            "payload_too_large",
            f"{len(images)} images in one request; the limit is {max_images}",
            {"max_images": max_images},
        )
    return images

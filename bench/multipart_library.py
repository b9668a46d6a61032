"""The contender in the multipart decision:
``service.protocols.v1.uploads.parse_multipart``'s contract
(the same input, the same parts, the same ``invalid_multipart`` refusals) built on
python-multipart's ``MultipartParser``, the parser Starlette uses.

The whole (bounded) body is already in memory, so it is written to the parser in one call
and the parts are collected from its callbacks; nothing is spooled to disk. The benchmark
(``bench/multipart_cost.py``) and the parser tests run both implementations.
"""

from __future__ import annotations

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from service.plumbing.errors import APIError
from service.protocols.v1.uploads import MAX_BOUNDARY_LENGTH, header_params

Part = tuple[dict[str, str], bytes]


class _Collector:
    """python-multipart's callbacks, gathering (headers, content) parts."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.ended = False
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._data: list[bytes] = []

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_part_data": lambda data, start, end: self._data.append(data[start:end]),
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers, self._data = {}, []

    def _header_end(self) -> None:
        name = bytes(self._field).strip().lower().decode("latin-1")
        self._headers[name] = bytes(self._value).strip().decode("utf-8", "replace")
        self._field.clear()
        self._value.clear()

    def _part_end(self) -> None:
        self.parts.append((self._headers, b"".join(self._data)))

    def _end(self) -> None:
        self.ended = True


def parse_multipart_library(body: bytes, content_type: str) -> list[Part]:
    """Split a ``multipart/form-data`` body into (headers, content) parts."""
    boundary = header_params(content_type).get("boundary", "")
    if not boundary or len(boundary) > MAX_BOUNDARY_LENGTH:
        raise APIError("invalid_multipart", "the multipart Content-Type has no valid boundary")
    collector = _Collector()
    parser = MultipartParser(boundary.encode("latin-1"), collector.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise APIError("invalid_multipart", f"the multipart body is malformed: {exc}") from None
    if not collector.ended:
        raise APIError("invalid_multipart", "the multipart body has no closing boundary")
    return collector.parts

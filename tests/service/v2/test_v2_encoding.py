"""Request decompression (bounded) and response compression for V2 bodies."""

from __future__ import annotations

import gzip
import zlib

import pytest

from service.protocols.v2.encoding import (
    MIN_COMPRESSED_RESPONSE_BYTES,
    choose_response_coding,
    decode_content,
    encode_content,
)
from service.protocols.v2.errors import V2Error

BODY = b'{"inputs": []}' * 50


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        (None, BODY),
        ("identity", BODY),
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("GZIP", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),  # what tritonclient sends for "deflate"
        ("deflate", raw_deflate(BODY)),  # what some other clients send
        ("deflate, gzip", gzip.compress(zlib.compress(BODY))),  # undone last to first
    ],
)
def test_decode_content_undoes_each_coding(coding: str | None, encoded: bytes) -> None:
    assert decode_content(encoded, coding, max_bytes=len(BODY)) == BODY


def test_unsupported_coding_is_415_naming_the_supported_ones() -> None:
    with pytest.raises(V2Error) as info:
        decode_content(BODY, "br", max_bytes=10**6)
    assert info.value.status == 415
    assert "'br'" in info.value.message and "gzip, deflate or identity" in info.value.message


def test_compressed_bomb_is_413_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(V2Error) as info:
        decode_content(bomb, "gzip", max_bytes=1_000_000)
    assert info.value.status == 413
    assert "1000000 bytes" in info.value.message


def test_body_exactly_at_the_limit_is_accepted() -> None:
    assert decode_content(gzip.compress(BODY), "gzip", max_bytes=len(BODY)) == BODY
    with pytest.raises(V2Error):
        decode_content(gzip.compress(BODY), "gzip", max_bytes=len(BODY) - 1)


@pytest.mark.parametrize(
    ("coding", "encoded", "words"),
    [
        ("gzip", gzip.compress(BODY)[:-12], "truncated"),
        ("gzip", gzip.compress(BODY) + b"junk", "after the end"),
        ("gzip", BODY, "not valid gzip"),
        ("deflate", b"\xff\xfe\xfd", "not valid deflate"),
        ("gzip", b"", "truncated"),
    ],
)
def test_broken_compressed_bodies_are_400(coding: str, encoded: bytes, words: str) -> None:
    with pytest.raises(V2Error) as info:
        decode_content(encoded, coding, max_bytes=10**6)
    assert info.value.status == 400
    assert words in info.value.message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("deflate, gzip", "gzip"),
        ("gzip;q=0, deflate", "deflate"),
        ("gzip;q=0", None),
        ("gzip;q=abc", None),
        ("br", None),
        (" GZIP ;q=0.5", "gzip"),
    ],
)
def test_choose_response_coding(header: str | None, expected: str | None) -> None:
    assert choose_response_coding(header) == expected


def test_encode_content_round_trips_and_skips_small_bodies() -> None:
    big = b"x" * (MIN_COMPRESSED_RESPONSE_BYTES * 4)
    body, coding = encode_content(big, "gzip")
    assert coding == "gzip" and gzip.decompress(body) == big
    body, coding = encode_content(big, "deflate")
    assert coding == "deflate" and zlib.decompress(body) == big
    assert encode_content(b"tiny", "gzip") == (b"tiny", None)
    assert encode_content(big, None) == (big, None)

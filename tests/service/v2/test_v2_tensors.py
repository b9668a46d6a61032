"""V2 tensor data: the BYTES wire format and JSON/binary data to NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from service.protocols.v2.errors import V2Error
from service.protocols.v2.tensors import (
    array_from_binary,
    array_from_json,
    bytes_from_binary,
    bytes_from_json,
    deserialize_bytes,
    serialize_bytes,
)

ITEMS = [b"", b"a", b"\x00\xff" * 100, "é".encode()]


def test_bytes_wire_format_matches_tritonclient_both_ways() -> None:
    ours = serialize_bytes(ITEMS)
    theirs = serialize_byte_tensor(np.array(ITEMS, dtype=np.object_)).item()
    assert ours == theirs
    assert list(deserialize_byte_tensor_list(ours)) == ITEMS
    assert deserialize_bytes(theirs, count=len(ITEMS), name="x") == ITEMS


def deserialize_byte_tensor_list(buffer: bytes) -> list[bytes]:
    return list(deserialize_bytes_tensor(buffer))


@pytest.mark.parametrize(
    ("buffer", "count", "words"),
    [
        (b"\x01\x00", 1, "cut inside its 4-byte length prefix"),
        (b"\x05\x00\x00\x00abc", 1, "declares 5 bytes but only 3 remain"),
        (serialize_bytes([b"a", b"b"]), 1, "more than the 1 element(s)"),
        (serialize_bytes([b"a"]), 2, "holds 1 element(s), its shape needs 2"),
        (b"", 1, "holds 0 element(s)"),
        (b"\xff\xff\xff\xff", 1, "declares 4294967295 bytes"),
    ],
)
def test_deserialize_bytes_refuses_malformed_data(buffer: bytes, count: int, words: str) -> None:
    with pytest.raises(V2Error) as info:
        deserialize_bytes(buffer, count=count, name="img")
    assert "input 'img'" in info.value.message
    assert words in info.value.message


def test_deserialize_stops_at_the_shape_count_on_a_flood_of_empty_elements() -> None:
    flood = b"\0\0\0\0" * 1_000_000
    with pytest.raises(V2Error, match="more than the 2 element"):
        deserialize_bytes(flood, count=2, name="x")


def test_bytes_from_binary_and_json() -> None:
    assert bytes_from_binary("x", [2, 1], serialize_bytes([b"p", b"q"])) == [b"p", b"q"]
    assert bytes_from_json("x", [2, 2], [["a", "b"], ["c", "é"]]) == [
        b"a",
        b"b",
        b"c",
        "é".encode(),
    ]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("abc", "must be a JSON array of strings, got a string"),
        ([1], "must hold strings, got a number"),
        ([["a"], [None]], "got null at element 1"),
        (["a"], "holds 1 element(s), shape [2] needs 2"),
        (["\ud800", "b"], "not valid UTF-8"),
    ],
)
def test_bytes_from_json_refuses_bad_data(data: object, words: str) -> None:
    with pytest.raises(V2Error) as info:
        bytes_from_json("x", [2], data)
    assert words in info.value.message


def test_array_from_binary_is_a_little_endian_view_of_the_right_shape() -> None:
    expected = np.arange(24, dtype="<f4").reshape(2, 3, 2, 2)
    buffer = memoryview(expected.tobytes())
    array = array_from_binary("image", "FP32", [2, 3, 2, 2], buffer)
    np.testing.assert_array_equal(array, expected)
    assert array.dtype == np.dtype("<f4") and not array.flags.writeable


@pytest.mark.parametrize("size", [0, 4, 95, 97, 200])
def test_array_from_binary_refuses_a_size_that_does_not_match_the_shape(size: int) -> None:
    with pytest.raises(V2Error) as info:
        array_from_binary("image", "FP32", [2, 3, 2, 2], b"\0" * size)
    assert f"binary_data_size is {size} bytes" in info.value.message
    assert "shape [2, 3, 2, 2] is 96 bytes" in info.value.message


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        ("FP32", [1, 2.5, -3, 4], np.array([[1, 2.5], [-3, 4]], dtype=np.float32)),
        ("FP32", [[1, 2.5], [-3, 4]], np.array([[1, 2.5], [-3, 4]], dtype=np.float32)),
        ("INT8", [[-128, 127], [0, 1]], np.array([[-128, 127], [0, 1]], dtype=np.int8)),
        ("UINT16", [0, 1, 2, 65535], np.array([[0, 1], [2, 65535]], dtype=np.uint16)),
        ("BOOL", [True, False, True, True], np.array([[1, 0], [1, 1]], dtype=bool)),
        ("FP16", [0.5, 1, 2, 3], np.array([[0.5, 1], [2, 3]], dtype=np.float16)),
    ],
)
def test_array_from_json_accepts_flat_and_nested_row_major(
    datatype: str, data: object, expected: np.ndarray
) -> None:
    array = array_from_json("t", datatype, [2, 2], data)
    assert array.dtype == expected.dtype
    np.testing.assert_array_equal(array, expected)


def test_array_from_json_accepts_an_empty_tensor() -> None:
    assert array_from_json("t", "FP32", [0, 3], []).shape == (0, 3)


@pytest.mark.parametrize(
    ("datatype", "data", "words"),
    [
        ("FP32", {"a": 1}, "must be a JSON array of numbers, got an object"),
        ("FP32", 3.0, "got a number"),
        ("FP32", [[1, 2], [3]], "not a regular"),
        ("FP32", [1, 2, 3], "holds 3 element(s), shape [2, 2] needs 4"),
        ("FP32", ["1", "2", "3", "4"], "must hold numbers, got strings"),
        ("FP32", [True, False, True, False], "must hold numbers, got booleans"),
        ("FP32", [1, None, 2, 3], "must hold numbers, got mixed values"),
        ("FP32", [1e39, 0, 0, 0], "outside the FP32 range"),
        ("INT8", [1, 2, 3, 128], "must lie in [-128, 127], got values from 1 to 128"),
        ("INT32", [1.5, 2, 3, 4], "must hold integers, got non-integer numbers"),
        ("BOOL", [1, 0, 1, 0], "must hold true/false, got integers"),
        ("BF16", [1, 2, 3, 4], "datatype BF16 cannot be decoded here"),
    ],
)
def test_array_from_json_refuses_bad_data(datatype: str, data: object, words: str) -> None:
    with pytest.raises(V2Error) as info:
        array_from_json("t", datatype, [2, 2], data)
    assert "input 't'" in info.value.message
    assert words in info.value.message

"""V2 tensor data: datatypes, the BYTES wire format, and JSON or binary data to NumPy.

Binary tensors are little-endian, row-major, without padding. A BYTES element is a 4-byte
little-endian unsigned length followed by that many bytes (``serialize_byte_tensor`` and
``deserialize_bytes_tensor`` in ``tritonclient.utils`` do exactly this).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np

from service.protocols.v2.errors import V2Error

# Fixed-size datatypes and their little-endian NumPy equivalents. BF16 has no NumPy dtype
# and BYTES is variable-sized, so both are handled apart.
FIXED_DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BYTES = "BYTES"
KNOWN_DATATYPES = (*FIXED_DATATYPES, "BF16", BYTES)

_LENGTH_PREFIX = struct.Struct("<I")


def element_count(shape: Sequence[int]) -> int:
    return math.prod(shape)


def format_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def serialize_bytes(items: Sequence[bytes]) -> bytes:
    """BYTES elements in row-major order -> the binary wire format."""
    parts = []
    for item in items:
        parts.append(_LENGTH_PREFIX.pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def deserialize_bytes(buffer: memoryview | bytes, *, count: int, name: str) -> list[bytes]:
    """The binary wire format -> exactly ``count`` elements, or a V2Error saying where it broke.

    ``count`` comes from the validated shape, so a hostile buffer of many empty elements
    stops after ``count`` of them instead of building millions of objects.
    """
    view = memoryview(buffer)
    items: list[bytes] = []
    offset = 0
    while offset < len(view):
        if len(items) == count:
            raise V2Error(
                f"input '{name}': the BYTES data holds more than the {count} element(s) its "
                f"shape gives ({len(view) - offset} bytes left after element {count})"
            )
        if offset + 4 > len(view):
            raise V2Error(
                f"input '{name}': BYTES element {len(items)} is cut inside its 4-byte length "
                f"prefix ({len(view) - offset} bytes left)"
            )
        (length,) = _LENGTH_PREFIX.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise V2Error(
                f"input '{name}': BYTES element {len(items)} declares {length} bytes but only "
                f"{len(view) - offset} remain"
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
    if len(items) != count:
        raise V2Error(
            f"input '{name}': the BYTES data holds {len(items)} element(s), its shape needs {count}"
        )
    return items


def array_from_binary(
    name: str, datatype: str, shape: Sequence[int], buffer: memoryview | bytes
) -> np.ndarray:
    """Binary data of a fixed-size datatype -> an array of ``shape``, a read-only view on
    ``buffer`` (no copy)."""
    dtype = _fixed_dtype(name, datatype)
    expected = element_count(shape) * dtype.itemsize
    if len(buffer) != expected:
        raise V2Error(
            f"input '{name}': binary_data_size is {len(buffer)} bytes, but {datatype} data of "
            f"shape {format_shape(shape)} is {expected} bytes"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(tuple(shape))


def array_from_json(name: str, datatype: str, shape: Sequence[int], data: object) -> np.ndarray:
    """The JSON ``data`` member (flat or nested, row-major) of a fixed-size datatype -> an
    array of ``shape``."""
    dtype = _fixed_dtype(name, datatype)
    if not isinstance(data, list):
        raise V2Error(
            f"input '{name}': 'data' must be a JSON array of numbers, got {_json_type(data)}"
        )
    try:
        values = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise V2Error(
            f"input '{name}': 'data' is not a regular (flat or evenly nested) array of "
            f"numbers: {exc}"
        ) from None
    count = element_count(shape)
    if values.size != count:
        raise V2Error(
            f"input '{name}': 'data' holds {values.size} element(s), shape "
            f"{format_shape(shape)} needs {count}"
        )
    return _cast(name, datatype, dtype, values).reshape(tuple(shape))


def bytes_from_binary(name: str, shape: Sequence[int], buffer: memoryview | bytes) -> list[bytes]:
    """Binary BYTES data -> its elements, exactly as many as ``shape`` holds."""
    return deserialize_bytes(buffer, count=element_count(shape), name=name)


def bytes_from_json(name: str, shape: Sequence[int], data: object) -> list[bytes]:
    """The JSON ``data`` member of a BYTES tensor (strings) -> UTF-8 encoded elements."""
    items = _flatten_strings(name, data)
    count = element_count(shape)
    if len(items) != count:
        raise V2Error(
            f"input '{name}': 'data' holds {len(items)} element(s), shape "
            f"{format_shape(shape)} needs {count}"
        )
    return items


def _fixed_dtype(name: str, datatype: str) -> np.dtype:
    dtype = FIXED_DATATYPES.get(datatype)
    if dtype is None:
        raise V2Error(
            f"input '{name}': datatype {datatype} cannot be decoded here; supported: "
            f"{', '.join((*FIXED_DATATYPES, BYTES))}"
        )
    return dtype


def _cast(name: str, datatype: str, dtype: np.dtype, values: np.ndarray) -> np.ndarray:
    kind = values.dtype.kind
    if values.size == 0:
        return values.astype(dtype)
    if datatype == "BOOL":
        if kind != "b":
            raise V2Error(f"input '{name}': BOOL 'data' must hold true/false, got {_kinds(kind)}")
        return values.astype(dtype)
    if dtype.kind in "iu":
        if kind not in "iu":
            raise V2Error(
                f"input '{name}': {datatype} 'data' must hold integers, got {_kinds(kind)}"
            )
        info = np.iinfo(dtype)
        low, high = int(values.min()), int(values.max())
        if low < info.min or high > info.max:
            raise V2Error(
                f"input '{name}': {datatype} 'data' must lie in [{info.min}, {info.max}], got "
                f"values from {low} to {high}"
            )
        return values.astype(dtype)
    if kind not in "iuf":
        raise V2Error(f"input '{name}': {datatype} 'data' must hold numbers, got {_kinds(kind)}")
    with np.errstate(over="ignore", invalid="ignore"):
        cast = values.astype(dtype)
    if not np.isfinite(cast).all():
        raise V2Error(
            f"input '{name}': {datatype} 'data' holds values outside the {datatype} range"
        )
    return cast


def _kinds(kind: str) -> str:
    return {
        "b": "booleans",
        "U": "strings",
        "O": "mixed values, nulls or integers too large for 64 bits",
        "f": "non-integer numbers",
        "i": "integers",
        "u": "integers",
    }.get(kind, "unsupported values")


def _flatten_strings(name: str, data: object) -> list[bytes]:
    if not isinstance(data, list):
        raise V2Error(
            f"input '{name}': BYTES 'data' must be a JSON array of strings, got {_json_type(data)}"
        )
    items: list[bytes] = []
    # Explicit stack: nesting depth comes from the client, so no recursion.
    stack: list[tuple[list[object], int]] = [(data, 0)]
    while stack:
        current, index = stack.pop()
        if index == len(current):
            continue
        stack.append((current, index + 1))
        element = current[index]
        if isinstance(element, list):
            stack.append((element, 0))
        elif isinstance(element, str):
            try:
                items.append(element.encode("utf-8"))
            except UnicodeEncodeError:
                raise V2Error(
                    f"input '{name}': BYTES element {len(items)} is not valid UTF-8 text"
                ) from None
        else:
            raise V2Error(
                f"input '{name}': BYTES 'data' must hold strings, got {_json_type(element)} at "
                f"element {len(items)}"
            )
    return items


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

"""Parse a V2 inference request body into typed parts, checking its structure and sizes.

Two body layouts (KServe V2 REST and its binary tensor data extension):

- JSON only: the whole body is the request object; every input carries ``data``.
- JSON header + binary: the ``Inference-Header-Content-Length`` header gives the length of the
  JSON object at the start of the body; inputs with ``parameters.binary_data_size`` take
  consecutive slices of the bytes after it, in the order the inputs are listed. The slices
  must cover those bytes exactly (Triton refuses both short and extra data).

Tensor data is not decoded here: the model's signature first checks names, datatypes and
shapes, so nothing is converted or allocated for a request that will be refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.protocols.v2.encoding import decode_content
from service.protocols.v2.errors import V2Error
from service.protocols.v2.tensors import KNOWN_DATATYPES

HEADER_LENGTH_HEADER = "Inference-Header-Content-Length"
MAX_TENSORS = 64  # inputs or outputs in one request; far above what a classifier takes
_MAX_DIM = 2**63 - 1  # shapes are int64 in the protocol
_SHARED_MEMORY_KEYS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


@dataclass(frozen=True)
class RequestInput:
    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # Exactly one of the two is set: the JSON ``data`` member, or this input's binary slice.
    json_data: Any = None
    binary_data: memoryview | None = None


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary_data: bool | None = None  # None: not said; the request's binary_data_output decides
    classification: int = 0  # 0: the raw tensor; k > 0: the top-k class strings


@dataclass(frozen=True)
class InferRequest:
    inputs: tuple[RequestInput, ...]
    outputs: tuple[RequestedOutput, ...] | None = None  # None: every output of the model
    id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def binary_data_output(self) -> bool:
        return bool(self.parameters.get("binary_data_output", False))


def parse_infer_request(
    body: bytes,
    *,
    header_length: str | None = None,
    content_encoding: str | None = None,
    max_bytes: int,
) -> InferRequest:
    """Decode the body (``Content-Encoding``), split the JSON header from the binary tensors
    and check the request's structure. Raises only V2Error."""
    body = decode_content(body, content_encoding, max_bytes=max_bytes)
    json_length = _parse_header_length(header_length, len(body))
    document = _load_json(body[:json_length])
    binary = memoryview(body)[json_length:]

    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise V2Error(f"'id' must be a string, got {_describe(request_id)}")
    parameters = _parameters(document.get("parameters"), "the request")
    if "binary_data_output" in parameters:
        _require_bool(parameters["binary_data_output"], "parameters.binary_data_output")
    if parameters.get("sequence_id") not in (None, 0, ""):
        raise V2Error(
            "sequence batching is not supported: each request is independent, so "
            "parameters.sequence_id must be absent, 0 or empty"
        )
    inputs = _parse_inputs(document.get("inputs"), binary, header_length is not None)
    outputs = _parse_outputs(document.get("outputs"))
    return InferRequest(inputs=inputs, outputs=outputs, id=request_id, parameters=parameters)


def _parse_header_length(value: str | None, body_length: int) -> int:
    if value is None:
        return body_length
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise V2Error(
            f"the {HEADER_LENGTH_HEADER} header must be a non-negative integer, got {value!r}"
        )
    length = int(text)
    if length > body_length:
        raise V2Error(
            f"the {HEADER_LENGTH_HEADER} header says the JSON header is {length} bytes, but the "
            f"(decoded) body is only {body_length} bytes"
        )
    return length


def _load_json(raw: bytes | memoryview) -> dict[str, Any]:
    if not raw:
        raise V2Error("the request body is empty: expected a JSON inference request")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise V2Error(
            f"the inference request is not valid JSON ({exc}); NaN and Infinity are not JSON "
            "numbers, and with binary tensors the JSON must end where "
            f"{HEADER_LENGTH_HEADER} says"
        ) from None
    if not isinstance(document, dict):
        raise V2Error(f"the inference request must be a JSON object, got {_describe(document)}")
    return document


def _parse_inputs(
    raw: object, binary: memoryview, has_header_length: bool
) -> tuple[RequestInput, ...]:
    if raw is None:
        raise V2Error("the inference request has no 'inputs'")
    if not isinstance(raw, list) or not raw:
        raise V2Error(f"'inputs' must be a non-empty array, got {_describe(raw)}")
    inputs = []
    offset = 0
    for name, item in _named_tensors(raw, "inputs", "input"):
        where = f"input '{name}'"
        datatype = _require_str(item.get("datatype"), f"{where}: 'datatype'")
        if datatype not in KNOWN_DATATYPES:
            raise V2Error(
                f"{where}: unknown datatype {datatype!r}; V2 datatypes are "
                f"{', '.join(KNOWN_DATATYPES)}"
            )
        shape = _parse_shape(item.get("shape"), where)
        parameters = _parameters(item.get("parameters"), where)
        _refuse_shared_memory(parameters, where)
        size = parameters.get("binary_data_size")
        has_data = "data" in item
        if size is None:
            if not has_data:
                raise V2Error(
                    f"{where} has neither 'data' nor parameters.binary_data_size: send the "
                    "tensor as JSON 'data' or as binary data after the JSON header"
                )
            inputs.append(RequestInput(name, datatype, shape, parameters, json_data=item["data"]))
            continue
        if has_data:
            raise V2Error(f"{where} has both 'data' and parameters.binary_data_size: send one")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise V2Error(
                f"{where}: parameters.binary_data_size must be a non-negative integer, got "
                f"{_describe(size)}"
            )
        if not has_header_length:
            raise V2Error(
                f"{where} has parameters.binary_data_size but the request has no "
                f"{HEADER_LENGTH_HEADER} header, so no binary data can follow the JSON"
            )
        remaining = len(binary) - offset
        if size > remaining:
            raise V2Error(
                f"{where}: parameters.binary_data_size is {size} bytes, but only {remaining} "
                "bytes of binary data follow the JSON header at this input's position"
            )
        inputs.append(
            RequestInput(
                name, datatype, shape, parameters, binary_data=binary[offset : offset + size]
            )
        )
        offset += size
    if offset != len(binary):
        raise V2Error(
            f"{len(binary) - offset} bytes of binary data after the JSON header are not claimed "
            "by any input's parameters.binary_data_size (the sizes add up to "
            f"{offset} of {len(binary)})"
        )
    return tuple(inputs)


def _parse_outputs(raw: object) -> tuple[RequestedOutput, ...] | None:
    # An empty list asks for nothing in particular, which means every output (as in Triton).
    if raw is None or raw == []:
        return None
    outputs = []
    for name, item in _named_tensors(raw, "outputs", "output"):
        where = f"output '{name}'"
        parameters = _parameters(item.get("parameters"), where)
        _refuse_shared_memory(parameters, where)
        binary = parameters.get("binary_data")
        if binary is not None:
            _require_bool(binary, f"{where}: parameters.binary_data")
        classification = parameters.get("classification", 0)
        if isinstance(classification, bool) or not isinstance(classification, int):
            raise V2Error(
                f"{where}: parameters.classification must be an integer, got "
                f"{_describe(classification)}"
            )
        if classification < 0:
            raise V2Error(
                f"{where}: parameters.classification must be 0 (raw tensor) or a positive "
                f"class count, got {classification}"
            )
        outputs.append(RequestedOutput(name, binary, classification))
    return tuple(outputs)


def _named_tensors(raw: object, member: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """The objects of the ``inputs`` or ``outputs`` array with their (unique) names."""
    if not isinstance(raw, list):
        raise V2Error(f"'{member}' must be an array, got {_describe(raw)}")
    if len(raw) > MAX_TENSORS:
        raise V2Error(f"'{member}' lists {len(raw)} tensors; at most {MAX_TENSORS} are accepted")
    named = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise V2Error(f"{member}[{index}] must be an object, got {_describe(item)}")
        name = _require_str(item.get("name"), f"{member}[{index}].name")
        if name in seen:
            raise V2Error(f"{kind} '{name}' appears more than once in '{member}'")
        seen.add(name)
        named.append((name, item))
    return named


def _parse_shape(raw: object, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list):
        raise V2Error(f"{where}: 'shape' must be an array of integers, got {_describe(raw)}")
    for dim in raw:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim <= _MAX_DIM:
            raise V2Error(f"{where}: 'shape' must hold non-negative integers, got {_describe(dim)}")
    return tuple(raw)


def _parameters(raw: object, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise V2Error(f"{where}: 'parameters' must be an object, got {_describe(raw)}")
    return raw


def _refuse_shared_memory(parameters: Mapping[str, Any], where: str) -> None:
    if any(key in parameters for key in _SHARED_MEMORY_KEYS):
        raise V2Error(
            f"{where}: the shared memory extension is not supported; send the tensor as JSON "
            "or binary data in the body"
        )


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise V2Error(f"{what} must be a non-empty string, got {_describe(value)}")
    return value


def _require_bool(value: object, what: str) -> None:
    if not isinstance(value, bool):
        raise V2Error(f"{what} must be true or false, got {_describe(value)}")


def _describe(value: object) -> str:
    """A short, safe rendering of a client value for an error message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = "null" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

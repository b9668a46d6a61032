"""Parsing V2 inference request bodies: both layouts, compression, and every refusal."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as httpclient

from service.protocols.v2.errors import V2Error
from service.protocols.v2.request import InferRequest, RequestedOutput, parse_infer_request

LIMIT = 1 << 20


def client_body(inputs: list[httpclient.InferInput], **kwargs: Any) -> tuple[bytes, str | None]:
    """The exact body and Inference-Header-Content-Length tritonclient.http would send."""
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, **kwargs)
    return body, None if json_size is None else str(json_size)


def fp32_input(
    array: np.ndarray, binary: bool = True, name: str = "image"
) -> httpclient.InferInput:
    tensor = httpclient.InferInput(name, list(array.shape), "FP32")
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def parse(body: bytes, header_length: str | None = None, **kwargs: Any) -> InferRequest:
    return parse_infer_request(body, header_length=header_length, max_bytes=LIMIT, **kwargs)


def refused(document: object, header_length: str | None = None, tail: bytes = b"") -> str:
    raw = orjson.dumps(document) if not isinstance(document, bytes) else document
    with pytest.raises(V2Error) as info:
        parse(raw + tail, header_length)
    assert info.value.status == 400
    return info.value.message


ARRAY = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)


def test_client_default_binary_request() -> None:
    body, header_length = client_body([fp32_input(ARRAY)])
    request = parse(body, header_length)
    (item,) = request.inputs
    assert (item.name, item.datatype, item.shape) == ("image", "FP32", (2, 3, 4, 4))
    assert item.binary_data is not None and bytes(item.binary_data) == ARRAY.tobytes()
    assert item.parameters["binary_data_size"] == ARRAY.nbytes
    # No outputs listed: tritonclient asks for every output as binary.
    assert request.outputs is None and request.binary_data_output is True


def test_client_json_request_with_outputs_and_id() -> None:
    outputs = [httpclient.InferRequestedOutput("probabilities", binary_data=False, class_count=2)]
    body, header_length = client_body(
        [fp32_input(ARRAY, binary=False)], outputs=outputs, request_id="req-7"
    )
    assert header_length is None
    request = parse(body)
    (item,) = request.inputs
    assert item.binary_data is None
    np.testing.assert_array_equal(np.asarray(item.json_data, dtype=np.float32), ARRAY.ravel())
    assert request.id == "req-7"
    assert request.outputs == (RequestedOutput("probabilities", False, 2),)
    assert request.binary_data_output is False


@pytest.mark.parametrize(
    ("coding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
def test_compressed_request_header_length_counts_decoded_bytes(coding: str, compress: Any) -> None:
    body, header_length = client_body([fp32_input(ARRAY)])
    request = parse_infer_request(
        compress(body), header_length=header_length, content_encoding=coding, max_bytes=LIMIT
    )
    assert bytes(request.inputs[0].binary_data or b"") == ARRAY.tobytes()


def test_binary_slices_follow_input_order_and_mix_with_json() -> None:
    document = {
        "inputs": [
            {"name": "a", "datatype": "UINT8", "shape": [3], "parameters": {"binary_data_size": 3}},
            {"name": "b", "datatype": "FP32", "shape": [1], "data": [1.5]},
            {"name": "c", "datatype": "UINT8", "shape": [2], "parameters": {"binary_data_size": 2}},
        ]
    }
    header = orjson.dumps(document)
    request = parse(header + b"abcde", str(len(header)))
    a, b, c = request.inputs
    assert bytes(a.binary_data or b"") == b"abc" and bytes(c.binary_data or b"") == b"de"
    assert b.json_data == [1.5]


def test_zero_sized_binary_input_and_header_length_equal_to_body() -> None:
    document = {
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [0], "parameters": {"binary_data_size": 0}}
        ]
    }
    header = orjson.dumps(document)
    (item,) = parse(header, str(len(header))).inputs
    assert item.binary_data is not None and len(item.binary_data) == 0


GOOD_INPUT = {"name": "image", "datatype": "FP32", "shape": [1], "data": [1.0]}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"", "body is empty"),
        (b"{not json", "not valid JSON"),
        (
            b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [NaN]}]}',
            "NaN",
        ),
        ([1, 2], "must be a JSON object, got an array"),
        ({}, "has no 'inputs'"),
        ({"inputs": []}, "non-empty array"),
        ({"inputs": {"a": 1}}, "non-empty array, got an object"),
        ({"inputs": [GOOD_INPUT] * 65}, "at most 64"),
        ({"inputs": [7]}, "inputs[0] must be an object"),
        ({"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}, "inputs[0].name must be"),
        ({"inputs": [{**GOOD_INPUT, "name": ""}]}, "non-empty string"),
        ({"inputs": [GOOD_INPUT, GOOD_INPUT]}, "appears more than once"),
        ({"inputs": [{**GOOD_INPUT, "datatype": "FLOAT"}]}, "unknown datatype 'FLOAT'"),
        ({"inputs": [{**GOOD_INPUT, "datatype": None}]}, "'datatype' must be a non-empty string"),
        ({"inputs": [{**GOOD_INPUT, "shape": "1"}]}, "'shape' must be an array"),
        ({"inputs": [{**GOOD_INPUT, "shape": [-1]}]}, "non-negative integers, got -1"),
        ({"inputs": [{**GOOD_INPUT, "shape": [1.0]}]}, "non-negative integers, got 1.0"),
        ({"inputs": [{**GOOD_INPUT, "shape": [True]}]}, "non-negative integers, got True"),
        ({"inputs": [{**GOOD_INPUT, "shape": [2**63]}]}, "non-negative integers"),
        ({"inputs": [{**GOOD_INPUT, "parameters": [1]}]}, "'parameters' must be an object"),
        (
            {"inputs": [{k: v for k, v in GOOD_INPUT.items() if k != "data"}]},
            "neither 'data' nor parameters.binary_data_size",
        ),
        (
            {"inputs": [{**GOOD_INPUT, "parameters": {"binary_data_size": 4}}]},
            "both 'data' and parameters.binary_data_size",
        ),
        (
            {"inputs": [{**GOOD_INPUT, "parameters": {"shared_memory_region": "r"}}]},
            "shared memory extension is not supported",
        ),
        ({"inputs": [GOOD_INPUT], "id": 5}, "'id' must be a string, got 5"),
        ({"inputs": [GOOD_INPUT], "parameters": "x"}, "'parameters' must be an object"),
        (
            {"inputs": [GOOD_INPUT], "parameters": {"binary_data_output": "yes"}},
            "binary_data_output must be true or false",
        ),
        (
            {"inputs": [GOOD_INPUT], "parameters": {"sequence_id": 3}},
            "sequence batching is not supported",
        ),
        ({"inputs": [GOOD_INPUT], "outputs": {}}, "'outputs' must be an array"),
        ({"inputs": [GOOD_INPUT], "outputs": ["p"]}, "outputs[0] must be an object"),
        ({"inputs": [GOOD_INPUT], "outputs": [{"name": "p"}, {"name": "p"}]}, "more than once"),
        (
            {"inputs": [GOOD_INPUT], "outputs": [{"name": "p", "parameters": {"binary_data": 1}}]},
            "binary_data must be true or false, got 1",
        ),
        (
            {
                "inputs": [GOOD_INPUT],
                "outputs": [{"name": "p", "parameters": {"classification": -1}}],
            },
            "classification must be 0 (raw tensor) or a positive class count, got -1",
        ),
        (
            {
                "inputs": [GOOD_INPUT],
                "outputs": [{"name": "p", "parameters": {"classification": True}}],
            },
            "classification must be an integer, got True",
        ),
        (
            {
                "inputs": [GOOD_INPUT],
                "outputs": [{"name": "p", "parameters": {"shared_memory_region": "r"}}],
            },
            "shared memory",
        ),
    ],
)
def test_malformed_requests_are_400_with_a_precise_message(document: object, words: str) -> None:
    assert words in refused(document)


def binary_input(size: object) -> dict[str, object]:
    return {
        "name": "image",
        "datatype": "UINT8",
        "shape": [4],
        "parameters": {"binary_data_size": size},
    }


@pytest.mark.parametrize(
    ("size", "tail", "words"),
    [
        (8, b"1234", "binary_data_size is 8 bytes, but only 4 bytes of binary data follow"),
        (2, b"1234", "2 bytes of binary data after the JSON header are not claimed"),
        (-4, b"1234", "must be a non-negative integer, got -4"),
        ("4", b"1234", "must be a non-negative integer, got '4'"),
        (4.0, b"1234", "must be a non-negative integer, got 4.0"),
        (True, b"1234", "must be a non-negative integer, got True"),
        (None, b"1234", "neither 'data' nor"),
    ],
)
def test_binary_data_size_must_match_the_bytes_after_the_header(
    size: object, tail: bytes, words: str
) -> None:
    document = {"inputs": [binary_input(size)]}
    if size is None:
        document["inputs"][0].pop("parameters")
    header = orjson.dumps(document)
    assert words in refused(header, str(len(header)), tail)


def test_binary_input_without_the_header_length_header_is_refused() -> None:
    assert "no Inference-Header-Content-Length header" in refused({"inputs": [binary_input(0)]})


def test_extra_bytes_after_a_json_only_request_are_refused() -> None:
    header = orjson.dumps({"inputs": [GOOD_INPUT]})
    assert "3 bytes of binary data after the JSON header are not claimed" in refused(
        header, str(len(header)), b"xyz"
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("-5", "must be a non-negative integer, got '-5'"),
        ("abc", "must be a non-negative integer"),
        ("١٢", "must be a non-negative integer"),  # non-ASCII digits
        ("100000", "says the JSON header is 100000 bytes, but the (decoded) body is only"),
        ("0", "body is empty"),
        ("5", "not valid JSON"),  # cuts the JSON short
    ],
)
def test_bad_header_length_values_are_refused(value: str, words: str) -> None:
    assert words in refused({"inputs": [GOOD_INPUT]}, value)


def test_an_empty_outputs_list_means_every_output() -> None:
    request = parse(orjson.dumps({"inputs": [GOOD_INPUT], "outputs": []}))
    assert request.outputs is None

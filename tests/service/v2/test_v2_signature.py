"""Checking a parsed request against a model's signature and decoding its input."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from service.inference.inputs import EncodedImages, TensorBatch
from service.protocols.v2.errors import V2Error
from service.protocols.v2.request import InferRequest, parse_infer_request
from service.protocols.v2.signature import ENCODED_IMAGE_INPUT, ModelSignature, read_model_input
from service.protocols.v2.tensors import serialize_bytes

SIGNATURE = ModelSignature("image", (3, 4, 4), "probabilities", ("cat", "dog", "bird"))
MAX_BATCH = 8


def binary_request(inputs: list[tuple[dict[str, object], bytes]]) -> InferRequest:
    document = {
        "inputs": [{**spec, "parameters": {"binary_data_size": len(data)}} for spec, data in inputs]
    }
    header = orjson.dumps(document)
    body = header + b"".join(data for _, data in inputs)
    return parse_infer_request(body, header_length=str(len(header)), max_bytes=1 << 24)


def json_request(inputs: list[dict[str, object]]) -> InferRequest:
    return parse_infer_request(orjson.dumps({"inputs": inputs}), max_bytes=1 << 24)


def read(request: InferRequest) -> TensorBatch | EncodedImages:
    return read_model_input(request, SIGNATURE, max_batch=MAX_BATCH)


def refused(request: InferRequest) -> str:
    with pytest.raises(V2Error) as info:
        read(request)
    assert info.value.status == 400
    return info.value.message


def tensor_spec(shape: list[int], datatype: str = "FP32", name: str = "image") -> dict[str, object]:
    return {"name": name, "datatype": datatype, "shape": shape}


ARRAY = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)


def test_binary_tensor_batch() -> None:
    result = read(binary_request([(tensor_spec([2, 3, 4, 4]), ARRAY.tobytes())]))
    assert isinstance(result, TensorBatch)
    np.testing.assert_array_equal(result.array, ARRAY)


def test_json_tensor_batch_nested_and_flat() -> None:
    for data in (ARRAY.tolist(), ARRAY.ravel().tolist()):
        result = read(json_request([{**tensor_spec([2, 3, 4, 4]), "data": data}]))
        assert isinstance(result, TensorBatch)
        np.testing.assert_array_equal(result.array, ARRAY)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_binary_values_are_refused(bad: float) -> None:
    array = ARRAY.copy()
    array[1, 2, 3, 0] = bad
    message = refused(binary_request([(tensor_spec([2, 3, 4, 4]), array.tobytes())]))
    assert message == "input 'image' holds 1 NaN or infinite value(s)"


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ([3, 4, 4], "expects shape [-1, 3, 4, 4] (batch, channels, height, width), got [3, 4, 4]"),
        ([1, 1, 4, 4], "got [1, 1, 4, 4]"),
        ([1, 3, 5, 4], "got [1, 3, 5, 4]"),
        ([1, 3, 4, 4, 1], "got [1, 3, 4, 4, 1]"),
        ([0, 3, 4, 4], "batch size (first dimension) must be from 1 to 8, got 0"),
        ([9, 3, 4, 4], "must be from 1 to 8, got 9"),
    ],
)
def test_wrong_shapes_say_what_was_expected(shape: list[int], words: str) -> None:
    count = int(np.prod(shape))
    message = refused(json_request([{**tensor_spec(shape), "data": [0.0] * count}]))
    assert words in message


def test_shape_is_checked_before_the_data_is_decoded() -> None:
    # A huge claimed batch with no data behind it is refused on the shape alone.
    message = refused(binary_request([(tensor_spec([10**12, 3, 4, 4]), b"")]))
    assert "got 1000000000000" in message


@pytest.mark.parametrize(
    ("datatype", "words"),
    [
        ("FP64", "input 'image' expects datatype FP32, got FP64"),
        ("INT32", "expects datatype FP32, got INT32"),
        ("BYTES", "to send encoded image files use input 'encoded_image'"),
    ],
)
def test_wrong_datatype_says_what_was_expected(datatype: str, words: str) -> None:
    message = refused(binary_request([(tensor_spec([1, 3, 4, 4], datatype), b"\0" * 8)]))
    assert words in message


def test_binary_size_not_matching_the_shape() -> None:
    message = refused(binary_request([(tensor_spec([2, 3, 4, 4]), ARRAY.tobytes()[:-4])]))
    assert (
        "binary_data_size is 380 bytes, but FP32 data of shape [2, 3, 4, 4] is 384 bytes" in message
    )


def test_unknown_and_extra_inputs() -> None:
    message = refused(json_request([{**tensor_spec([1], name="input__0"), "data": [1.0]}]))
    assert message == (
        "unknown input 'input__0': this model takes 'image' (FP32 [-1, 3, 4, 4]) or "
        "'encoded_image' (BYTES [-1])"
    )
    both = json_request(
        [
            {**tensor_spec([1, 3, 4, 4]), "data": [0.0] * 48},
            {"name": ENCODED_IMAGE_INPUT, "datatype": "BYTES", "shape": [1], "data": ["eA=="]},
        ]
    )
    assert "send exactly one input" in refused(both)


def image_spec(shape: list[int], datatype: str = "BYTES") -> dict[str, object]:
    return {"name": ENCODED_IMAGE_INPUT, "datatype": datatype, "shape": shape}


@pytest.mark.parametrize("shape", [[2], [2, 1]])
def test_encoded_images_binary(shape: list[int]) -> None:
    result = read(
        binary_request([(image_spec(shape), serialize_bytes([b"\x89PNG1", b"\xff\xd8"]))])
    )
    assert result == EncodedImages((b"\x89PNG1", b"\xff\xd8"))


def test_encoded_images_json_are_base64() -> None:
    data = [base64.b64encode(b"\xff\xd8\xff").decode()]
    assert read(json_request([{**image_spec([1]), "data": data}])) == EncodedImages(
        (b"\xff\xd8\xff",)
    )
    message = refused(json_request([{**image_spec([1]), "data": ["not base64!"]}]))
    assert "JSON element 0 is not base64" in message


@pytest.mark.parametrize(
    ("spec", "data", "words"),
    [
        (
            image_spec([1], "UINT8"),
            b"\0",
            "expects datatype BYTES (encoded image files), got UINT8",
        ),
        (image_spec([1, 2]), serialize_bytes([b"a", b"b"]), "expects shape [-1] or [-1, 1]"),
        (image_spec([]), serialize_bytes([b"a"]), "got []"),
        (image_spec([0]), b"", "must be from 1 to 8, got 0"),
        (image_spec([2]), serialize_bytes([b"a", b""]), "image 1 is empty"),
        (image_spec([2]), serialize_bytes([b"a"]), "holds 1 element(s), its shape needs 2"),
    ],
)
def test_bad_encoded_image_inputs(spec: dict[str, object], data: bytes, words: str) -> None:
    assert words in refused(binary_request([(spec, data)]))

"""Property: whatever the bytes, headers or JSON, the V2 codec answers with V2Error or a
valid result, never another exception (which the server would turn into a 500)."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.inference.inputs import EncodedImages, TensorBatch
from service.protocols.v2.codec import decode_request
from service.protocols.v2.errors import V2Error
from service.protocols.v2.request import parse_infer_request
from service.protocols.v2.signature import ModelSignature, read_model_input
from service.protocols.v2.tensors import KNOWN_DATATYPES

SIGNATURE = ModelSignature("image", (1, 2, 2), "probabilities", ("a", "b"))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)
dims = st.one_of(st.integers(min_value=-2, max_value=6), st.just(2**40), json_scalars)
parameter_values = st.one_of(
    st.integers(min_value=-3, max_value=64), st.booleans(), st.text(max_size=3), st.none()
)
tensor_specs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["image", "encoded_image", "other", ""]) | json_scalars,
        "datatype": st.sampled_from([*KNOWN_DATATYPES, "FLOAT"]),
        "shape": st.lists(dims, max_size=5) | json_values,
        "data": json_values,
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_size", "binary_data", "classification", "x"]),
            parameter_values,
            max_size=3,
        )
        | json_values,
    },
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "inputs": st.lists(tensor_specs, max_size=3) | json_values,
        "outputs": st.lists(tensor_specs, max_size=2) | json_values,
        "id": json_scalars,
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_output", "sequence_id", "priority"]),
            parameter_values,
            max_size=2,
        )
        | json_values,
    },
)


def run_codec(body: bytes, header_length: str | None, coding: str | None) -> None:
    try:
        _, model_input, _ = decode_request(
            body,
            header_length=header_length,
            content_encoding=coding,
            signature=SIGNATURE,
            max_bytes=1 << 16,
            max_batch=4,
        )
    except V2Error as exc:
        assert 400 <= exc.status < 500 and exc.message
        return
    # Anything accepted is something the model can run.
    if isinstance(model_input, TensorBatch):
        assert model_input.array.dtype == np.float32 and model_input.array.shape[1:] == (1, 2, 2)
        assert np.isfinite(model_input.array).all()
    else:
        assert isinstance(model_input, EncodedImages) and all(model_input.images)


@FUZZ
@given(
    body=st.binary(max_size=300),
    header_length=st.none() | st.text(max_size=6) | st.integers(0, 320).map(str),
    coding=st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip, deflate"]),
)
def test_arbitrary_bytes_never_escape_as_another_exception(
    body: bytes, header_length: str | None, coding: str | None
) -> None:
    run_codec(body, header_length, coding)


@FUZZ
@given(
    document=documents,
    tail=st.binary(max_size=64),
    header_mode=st.sampled_from(["none", "exact", "off_by_one"]),
    coding=st.sampled_from([None, "gzip", "deflate"]),
)
def test_structured_requests_never_escape_as_another_exception(
    document: dict[str, object], tail: bytes, header_mode: str, coding: str | None
) -> None:
    # The stdlib writes integers beyond 64 bits too, which a hostile client can send.
    header = json.dumps(document).encode()
    body = header + tail if header_mode != "none" else header
    header_length = {"none": None, "exact": str(len(header)), "off_by_one": str(len(header) - 1)}[
        header_mode
    ]
    if coding == "gzip":
        body = gzip.compress(body)
    elif coding == "deflate":
        body = zlib.compress(body)
    run_codec(body, header_length, coding)


@FUZZ
@given(
    values=st.lists(
        st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=4, max_size=4
    ),
    batch=st.integers(min_value=1, max_value=4),
)
def test_binary_tensors_are_accepted_exactly_when_finite(values: list[float], batch: int) -> None:
    array = np.array(values * batch, dtype="<f4").reshape(batch, 1, 2, 2)
    spec = {
        "name": "image",
        "datatype": "FP32",
        "shape": list(array.shape),
        "parameters": {"binary_data_size": array.nbytes},
    }
    header = orjson.dumps({"inputs": [spec]})
    request = parse_infer_request(
        header + array.tobytes(), header_length=str(len(header)), max_bytes=1 << 16
    )
    if np.isfinite(array).all():
        result = read_model_input(request, SIGNATURE, max_batch=4)
        assert isinstance(result, TensorBatch)
        np.testing.assert_array_equal(result.array, array)
    else:
        try:
            read_model_input(request, SIGNATURE, max_batch=4)
        except V2Error as exc:
            assert "NaN or infinite" in exc.message
        else:
            raise AssertionError("a non-finite tensor was accepted")

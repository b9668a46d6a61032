"""Building V2 responses, read back with tritonclient's own InferResult parser."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import tritonclient.http as httpclient

from service.protocols.v2.errors import V2Error
from service.protocols.v2.request import InferRequest, RequestedOutput, RequestInput
from service.protocols.v2.response import (
    EncodedResponse,
    OutputPlan,
    classification_strings,
    encode_infer_response,
    plan_outputs,
)
from service.protocols.v2.signature import ModelSignature

LABELS = ("cat", "dog", "bird")
SIGNATURE = ModelSignature("image", (3, 4, 4), "probabilities", LABELS)
PROBS = np.array([[0.1, 0.7, 0.2], [0.25, 0.25, 0.5]], dtype=np.float32)


def encode(*plans: OutputPlan, **kwargs: object) -> EncodedResponse:
    return encode_infer_response(
        model_name="rgb",
        model_version="1",
        probabilities=PROBS,
        plans=plans,
        labels=LABELS,
        **kwargs,  # type: ignore[arg-type]
    )


def client_result(response: EncodedResponse) -> httpclient.InferResult:
    header_length = response.headers.get("Inference-Header-Content-Length")
    return httpclient.InferResult.from_response_body(
        response.body, header_length=None if header_length is None else int(header_length)
    )


@pytest.mark.parametrize("binary", [False, True])
def test_probabilities_round_trip_through_the_client(binary: bool) -> None:
    response = encode(OutputPlan("probabilities", binary=binary))
    result = client_result(response)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), PROBS)
    output = result.get_output("probabilities")
    assert output["datatype"] == "FP32" and output["shape"] == [2, 3]
    if binary:
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert output["parameters"] == {"binary_data_size": PROBS.nbytes}
    else:
        assert response.headers == {"Content-Type": "application/json"}
        assert "parameters" not in output


@pytest.mark.parametrize("binary", [False, True])
def test_classification_matches_tritons_format(binary: bool) -> None:
    result = client_result(encode(OutputPlan("probabilities", binary, classification=2)))
    strings = result.as_numpy("probabilities")
    assert strings.shape == (2, 2)
    expected = [
        ["0.700000:1:dog", "0.200000:2:bird"],
        ["0.500000:2:bird", "0.250000:0:cat"],  # a tie keeps the lower index first
    ]
    decoded = [[s.decode() if isinstance(s, bytes) else s for s in row] for row in strings]
    assert decoded == expected
    assert result.get_output("probabilities")["datatype"] == "BYTES"


def test_classification_count_is_capped_at_the_number_of_classes() -> None:
    result = client_result(encode(OutputPlan("probabilities", True, classification=10)))
    assert result.as_numpy("probabilities").shape == (2, 3)


def test_classification_scores_print_like_cpp_to_string() -> None:
    probs = np.array([[1e-7, 0.123456789, 1.0]], dtype=np.float32)
    assert classification_strings(probs, 3, ("a", "b", "c")) == [
        b"1.000000:2:c",
        b"0.123457:1:b",
        b"0.000000:0:a",
    ]


def test_json_and_binary_outputs_together_keep_buffer_offsets_right() -> None:
    response = encode(
        OutputPlan("probabilities", binary=True, classification=1),
        OutputPlan("probabilities", binary=True),
    )
    header_length = int(response.headers["Inference-Header-Content-Length"])
    document = orjson.loads(response.body[:header_length])
    sizes = [o["parameters"]["binary_data_size"] for o in document["outputs"]]
    assert header_length + sum(sizes) == len(response.body)
    tail = response.body[header_length + sizes[0] :]
    np.testing.assert_array_equal(np.frombuffer(tail, dtype="<f4").reshape(2, 3), PROBS)


def test_id_and_parameters_are_echoed() -> None:
    response = encode(
        OutputPlan("probabilities"), request_id="abc", parameters={"queue_ms": 0.5, "batch": 2}
    )
    document = orjson.loads(response.body)
    assert document["id"] == "abc"
    assert document["model_name"] == "rgb" and document["model_version"] == "1"
    assert document["parameters"] == {"queue_ms": 0.5, "batch": 2}


def request_with(outputs: tuple[RequestedOutput, ...] | None, binary_output: bool) -> InferRequest:
    item = RequestInput("image", "FP32", (1,), json_data=[0.0])
    return InferRequest((item,), outputs, parameters={"binary_data_output": binary_output})


@pytest.mark.parametrize("binary_output", [False, True])
def test_plan_outputs_defaults_to_the_request_binary_flag(binary_output: bool) -> None:
    assert plan_outputs(request_with(None, binary_output), SIGNATURE) == (
        OutputPlan("probabilities", binary_output, 0),
    )
    listed = (RequestedOutput("probabilities", None, 3),)
    assert plan_outputs(request_with(listed, binary_output), SIGNATURE) == (
        OutputPlan("probabilities", binary_output, 3),
    )
    explicit = (RequestedOutput("probabilities", not binary_output, 0),)
    assert plan_outputs(request_with(explicit, binary_output), SIGNATURE)[0].binary is (
        not binary_output
    )


def test_plan_outputs_refuses_unknown_outputs() -> None:
    with pytest.raises(V2Error) as info:
        plan_outputs(request_with((RequestedOutput("logits"),), False), SIGNATURE)
    assert info.value.message == (
        "unknown output 'logits': this model returns 'probabilities' (FP32 [-1, 3])"
    )

"""The codec's whole request path in one call: body bytes to a checked model input."""

from __future__ import annotations

from service.protocols.v2.request import InferRequest, parse_infer_request
from service.protocols.v2.response import OutputPlan, plan_outputs
from service.protocols.v2.signature import ModelInput, ModelSignature, read_model_input


def decode_request(
    body: bytes,
    *,
    header_length: str | None,
    content_encoding: str | None,
    signature: ModelSignature,
    max_bytes: int,
    max_batch: int,
) -> tuple[InferRequest, ModelInput, tuple[OutputPlan, ...]]:
    """The whole codec for one request body: parsed, checked against the model, decoded."""
    infer_request = parse_infer_request(
        body, header_length=header_length, content_encoding=content_encoding, max_bytes=max_bytes
    )
    model_input = read_model_input(infer_request, signature, max_batch=max_batch)
    return infer_request, model_input, plan_outputs(infer_request, signature)

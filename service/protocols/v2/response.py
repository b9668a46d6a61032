"""Build V2 inference responses: JSON or binary outputs, and the classification extension.

A binary output is announced in the JSON with ``parameters.binary_data_size`` and its bytes
follow the JSON header in output order; the ``Inference-Header-Content-Length`` response
header gives the JSON length (``tritonclient.http.InferResult`` splits the body with it).

Classification (``parameters.classification: k`` on a requested output) replaces the tensor
with, per batch entry, the k highest probabilities as BYTES strings ``"score:index:label"``,
shape ``[batch, min(k, classes)]``; the score is printed like C++ ``std::to_string`` (six
decimals), as Triton does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from service.protocols.v2.errors import V2Error
from service.protocols.v2.request import HEADER_LENGTH_HEADER, InferRequest
from service.protocols.v2.signature import (
    IN_DISTRIBUTION_OUTPUT,
    OOD_SCORE_OUTPUT,
    ModelSignature,
)
from service.protocols.v2.tensors import serialize_bytes

JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"
ParameterValue = str | int | float | bool


@dataclass(frozen=True)
class OutputPlan:
    """How one output goes back: as JSON or binary, raw or as top-k classifications."""

    name: str
    binary: bool = False
    classification: int = 0


@dataclass(frozen=True)
class EncodedResponse:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def plan_outputs(request: InferRequest, signature: ModelSignature) -> tuple[OutputPlan, ...]:
    """Resolve the requested outputs against the model's single output.

    No ``outputs``: the model's output, binary if ``parameters.binary_data_output`` says so.
    A listed output without ``binary_data`` falls back to that same request parameter.
    """
    default_binary = request.binary_data_output
    if request.outputs is None:
        return tuple(OutputPlan(name, default_binary) for name in signature.output_names)
    plans = []
    for output in request.outputs:
        if output.name not in signature.output_names:
            extra = (
                f", '{OOD_SCORE_OUTPUT}' (FP32 [-1]), '{IN_DISTRIBUTION_OUTPUT}' (BOOL [-1])"
                if signature.ood
                else ""
            )
            raise V2Error(
                f"unknown output {output.name!r}: this model returns '{signature.output_name}' "
                f"(FP32 [-1, {len(signature.labels)}]){extra}"
            )
        if output.classification and output.name != signature.output_name:
            raise V2Error(
                f"parameters.classification applies to '{signature.output_name}' only, "
                f"not {output.name!r}"
            )
        binary = default_binary if output.binary_data is None else output.binary_data
        plans.append(OutputPlan(output.name, binary, output.classification))
    return tuple(plans)


def classification_strings(probabilities: np.ndarray, k: int, labels: Sequence[str]) -> list[bytes]:
    """Row-major ``[batch, min(k, classes)]`` strings ``"score:index:label"``, best first.

    Ties keep the lower index first (a stable sort), so results are deterministic.
    """
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    strings = []
    for row, indices in zip(probabilities, top, strict=True):
        for index in indices:
            score = float(row[index])
            strings.append(f"{score:f}:{int(index)}:{labels[int(index)]}".encode())
    return strings


def encode_infer_response(
    *,
    model_name: str,
    model_version: str,
    probabilities: np.ndarray,
    plans: Sequence[OutputPlan],
    labels: Sequence[str],
    request_id: str | None = None,
    parameters: Mapping[str, ParameterValue] | None = None,
    per_image: Mapping[str, np.ndarray] | None = None,
) -> EncodedResponse:
    """The response body and headers for ``probabilities`` (float32, ``[batch, classes]``);
    ``per_image`` holds the one-value-per-image outputs (``ood_score`` float, FP32;
    ``in_distribution`` bool, BOOL) a plan may name."""
    probabilities = np.ascontiguousarray(probabilities, dtype=np.float32)
    batch, classes = probabilities.shape
    outputs = []
    buffers: list[bytes] = []
    for plan in plans:
        output: dict[str, object] = {"name": plan.name}
        if per_image is not None and plan.name in per_image:
            values = per_image[plan.name]
            flags = values.dtype == np.bool_
            output.update(datatype="BOOL" if flags else "FP32", shape=[batch])
            if plan.binary:
                raw = values.astype(np.uint8) if flags else values.astype("<f4")
                buffers.append(raw.tobytes())
            else:
                output["data"] = values.tolist() if flags else values.astype(np.float32)
        elif plan.classification > 0:
            k = min(plan.classification, classes)
            strings = classification_strings(probabilities, k, labels)
            output.update(datatype="BYTES", shape=[batch, k])
            if plan.binary:
                buffers.append(serialize_bytes(strings))
            else:
                output["data"] = [s.decode() for s in strings]
        else:
            output.update(datatype="FP32", shape=[batch, classes])
            if plan.binary:
                buffers.append(probabilities.astype("<f4", copy=False).tobytes())
            else:
                output["data"] = probabilities.ravel()
        if plan.binary:
            output["parameters"] = {"binary_data_size": len(buffers[-1])}
        outputs.append(output)

    document: dict[str, object] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        document["id"] = request_id
    if parameters:
        document["parameters"] = dict(parameters)
    document["outputs"] = outputs
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not any(plan.binary for plan in plans):
        return EncodedResponse(header, {"Content-Type": JSON_CONTENT_TYPE})
    return EncodedResponse(
        header + b"".join(buffers),
        {"Content-Type": BINARY_CONTENT_TYPE, HEADER_LENGTH_HEADER: str(len(header))},
    )

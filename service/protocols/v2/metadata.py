"""Server and model metadata documents of the V2 protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.protocols.v2.signature import (
    ENCODED_IMAGE_INPUT,
    IN_DISTRIBUTION_OUTPUT,
    OOD_SCORE_OUTPUT,
    TENSOR_DATATYPE,
    ModelSignature,
)

SERVER_NAME = "rectifier"
PLATFORM = "onnx_onnxv1"
# What Triton reports for the same capabilities; clients look these names up.
EXTENSIONS = ("binary_tensor_data", "classification")


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(name: str, versions: Sequence[int], signature: ModelSignature) -> dict[str, Any]:
    """The model's tensors; the first input is the model's own, so clients that take
    ``inputs[0]`` (as Triton's examples do) get the preprocessed-tensor input."""
    return {
        "name": name,
        "versions": [str(v) for v in sorted(versions)],
        "platform": PLATFORM,
        "inputs": [
            {
                "name": signature.input_name,
                "datatype": TENSOR_DATATYPE,
                "shape": [-1, *signature.input_shape],
            },
            {"name": ENCODED_IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {
                "name": signature.output_name,
                "datatype": TENSOR_DATATYPE,
                "shape": [-1, len(signature.labels)],
            },
            *(
                [
                    {"name": OOD_SCORE_OUTPUT, "datatype": TENSOR_DATATYPE, "shape": [-1]},
                    {"name": IN_DISTRIBUTION_OUTPUT, "datatype": "BOOL", "shape": [-1]},
                ]
                if signature.ood
                else []
            ),
        ],
    }

"""V2 server and model metadata documents."""

from __future__ import annotations

from service.protocols.v2.metadata import model_metadata, server_metadata
from service.protocols.v2.signature import ModelSignature


def test_server_metadata_lists_the_extensions_we_implement() -> None:
    assert server_metadata("0.1.0") == {
        "name": "rectifier",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "classification"],
    }


def test_model_metadata_has_a_dynamic_batch_axis_and_both_inputs() -> None:
    signature = ModelSignature("image", (1, 28, 28), "probabilities", ("normal", "pneumonia"))
    assert model_metadata("gray", [2, 1], signature) == {
        "name": "gray",
        "versions": ["1", "2"],
        "platform": "onnx_onnxv1",
        "inputs": [
            {"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]},
            {"name": "encoded_image", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
    }

"""Response documents of the V2 endpoints, for the OpenAPI schema (``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel


class V2ErrorResponse(BaseModel):
    """Every V2 error body: ``{"error": "<what was expected and what came>"}``."""

    error: str


class ServerMetadataResponse(BaseModel):
    name: str
    version: str
    extensions: list[str]


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ModelReadyResponse(BaseModel):
    name: str
    version: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


# The JSON form of an inference request, as far as a schema can say it: whether the names,
# datatypes, shapes and data fit the model is checked per request (400 with the reason).
_PARAMETERS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
INFER_REQUEST_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {
            **_PARAMETERS,
            "properties": {"binary_data_output": {"type": "boolean"}},
        },
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "datatype": {"type": "string", "enum": ["FP32", "BYTES"]},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "data": {"type": "array"},
                    "parameters": {
                        **_PARAMETERS,
                        "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                    },
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "parameters": {
                        **_PARAMETERS,
                        "properties": {
                            "binary_data": {"type": "boolean"},
                            "classification": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        },
    },
}

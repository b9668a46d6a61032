"""What a Rectifier model accepts and returns over V2, and the checks a request must pass.

A model has two ways in, and a request uses exactly one:

- its own tensor input (the card's ``input_name``, FP32, shape ``[-1, C, H, W]``), already
  preprocessed as the card says;
- ``encoded_image`` (BYTES, shape ``[-1]`` or ``[-1, 1]``): encoded image files (JPEG, PNG,
  ...) that the server decodes and preprocesses with the card, like the image API does.

and one output, the card's ``output_name`` (FP32 probabilities, shape ``[-1, classes]``:
softmax(logits / T), calibrated when the card has a ``trust`` section), plus, for a card
with an OOD scorer, ``ood_score`` (FP32 ``[-1]``) and ``in_distribution`` (BOOL ``[-1]``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np

from model.card import MAX_FRAME, ModelCard
from service.inference.inputs import EncodedImages, ModelInput, TensorBatch
from service.protocols.v2.errors import V2Error
from service.protocols.v2.request import InferRequest, RequestInput
from service.protocols.v2.tensors import (
    BYTES,
    array_from_binary,
    array_from_json,
    bytes_from_binary,
    bytes_from_json,
    format_shape,
)

ENCODED_IMAGE_INPUT = "encoded_image"
OOD_SCORE_OUTPUT = "ood_score"
IN_DISTRIBUTION_OUTPUT = "in_distribution"
TENSOR_DATATYPE = "FP32"


@dataclass(frozen=True)
class ModelSignature:
    input_name: str
    input_shape: tuple[int, int, int]  # (C, H, W) of one preprocessed image
    output_name: str
    labels: tuple[str, ...]
    ood: bool = False  # the card has an OOD scorer: ood_score and in_distribution too

    @classmethod
    def from_card(cls, card: ModelCard) -> ModelSignature:
        ood = card.trust is not None and card.trust.ood is not None
        return cls(card.input_name, card.input_shape, card.output_name, card.labels, ood)

    @property
    def output_names(self) -> tuple[str, ...]:
        extra = (OOD_SCORE_OUTPUT, IN_DISTRIBUTION_OUTPUT) if self.ood else ()
        return (self.output_name, *extra)

    @property
    def input_names(self) -> tuple[str, str]:
        return (self.input_name, ENCODED_IMAGE_INPUT)


def read_model_input(
    request: InferRequest, signature: ModelSignature, *, max_batch: int
) -> ModelInput:
    """Check the request's input against the signature, then decode its data.

    Name, datatype, shape and batch size are checked before any data is converted, so a
    request that will be refused costs no allocation.
    """
    known = signature.input_names
    unknown = [item.name for item in request.inputs if item.name not in known]
    if unknown:
        raise V2Error(
            f"unknown input {unknown[0]!r}: this model takes '{signature.input_name}' "
            f"({TENSOR_DATATYPE} {format_shape(_tensor_shape(signature))}) or "
            f"'{ENCODED_IMAGE_INPUT}' (BYTES [-1])"
        )
    if len(request.inputs) != 1:
        raise V2Error(
            f"send exactly one input, '{signature.input_name}' or '{ENCODED_IMAGE_INPUT}', "
            f"not {len(request.inputs)}"
        )
    item = request.inputs[0]
    if item.name == ENCODED_IMAGE_INPUT:
        return _read_encoded_images(item, max_batch)
    return _read_tensor(item, signature, max_batch)


def _read_tensor(item: RequestInput, signature: ModelSignature, max_batch: int) -> TensorBatch:
    expected = _tensor_shape(signature)
    if item.datatype != TENSOR_DATATYPE:
        hint = (
            f"; to send encoded image files use input '{ENCODED_IMAGE_INPUT}'"
            if item.datatype == BYTES
            else ""
        )
        raise V2Error(
            f"input '{item.name}' expects datatype {TENSOR_DATATYPE}, got {item.datatype}{hint}"
        )
    if len(item.shape) != 4 or item.shape[1:] != signature.input_shape:
        raise V2Error(
            f"input '{item.name}' expects shape {format_shape(expected)} (batch, channels, "
            f"height, width), got {format_shape(item.shape)}"
        )
    _check_batch(item, item.shape[0], max_batch)
    if item.binary_data is not None:
        array = array_from_binary(item.name, item.datatype, item.shape, item.binary_data)
    else:
        array = array_from_json(item.name, item.datatype, item.shape, item.json_data)
    if not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise V2Error(f"input '{item.name}' holds {bad} NaN or infinite value(s)")
    # Binary data starts wherever the JSON header ends, so the view may be misaligned for
    # float32; onnxruntime wants aligned native memory, and a copy of one batch is cheap.
    return TensorBatch(np.require(array, dtype=np.float32, requirements=["C", "A"]))


def _read_encoded_images(item: RequestInput, max_batch: int) -> EncodedImages:
    if item.datatype != BYTES:
        raise V2Error(
            f"input '{ENCODED_IMAGE_INPUT}' expects datatype BYTES (encoded image files), got "
            f"{item.datatype}"
        )
    if not (len(item.shape) == 1 or (len(item.shape) == 2 and item.shape[1] == 1)):
        raise V2Error(
            f"input '{ENCODED_IMAGE_INPUT}' expects shape [-1] or [-1, 1] (one encoded image "
            f"per batch entry), got {format_shape(item.shape)}"
        )
    _check_batch(item, item.shape[0], max_batch)
    if item.binary_data is not None:
        elements = bytes_from_binary(item.name, item.shape, item.binary_data)
    else:
        # JSON cannot carry raw bytes: image files sent as JSON strings are base64.
        strings = bytes_from_json(item.name, item.shape, item.json_data)
        elements = [_b64decode(element, index) for index, element in enumerate(strings)]
    empty = [index for index, element in enumerate(elements) if not element]
    if empty:
        raise V2Error(f"input '{ENCODED_IMAGE_INPUT}': image {empty[0]} is empty (0 bytes)")
    return EncodedImages(tuple(elements), _frame(item))


def _frame(item: RequestInput) -> int | None:
    """``parameters.frame``: the frame of multi-frame files to classify (from 0)."""
    frame = item.parameters.get("frame")
    if frame is None:
        return None
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame <= MAX_FRAME:
        raise V2Error(
            f"input '{ENCODED_IMAGE_INPUT}': parameters.frame must be an integer from 0 to "
            f"{MAX_FRAME} (the frame of a multi-frame image), got {frame!r}"
        )
    return frame


def _check_batch(item: RequestInput, batch: int, max_batch: int) -> None:
    if not 1 <= batch <= max_batch:
        raise V2Error(
            f"input '{item.name}': batch size (first dimension) must be from 1 to {max_batch}, "
            f"got {batch}"
        )


def _b64decode(element: bytes, index: int) -> bytes:
    try:
        return base64.b64decode(element, validate=True)
    except (binascii.Error, ValueError):
        raise V2Error(
            f"input '{ENCODED_IMAGE_INPUT}': JSON element {index} is not base64; in JSON form "
            "each image file must be a base64 string (or send it as binary data)"
        ) from None


def _tensor_shape(signature: ModelSignature) -> tuple[int, ...]:
    return (-1, *signature.input_shape)

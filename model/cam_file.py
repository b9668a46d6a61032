"""``rectifier explain IMAGE --model models/NAME``: a class-activation overlay on disk.

Runs the exported ONNX file with onnxruntime on the CPU (no torch, no server), decodes the
file (``model.decoding``: images and DICOM) and preprocesses it exactly as the service does,
and writes the heatmap overlay PNG next to the image. The maths and the drawing are
``model/cam.py``, shared with the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.cam import (
    NotExplainableError,
    check_explainable,
    heatmap,
    overlay,
    png_bytes,
    select_class,
)
from model.card import CardError, ModelCard, card_from_metadata
from model.decoding import FILE_MAX_PIXELS, DecodeError, decode_image
from model.files import write_atomically
from model.layout import MODEL_FILE, newest_model_file
from model.preprocess import model_view, normalize_into


class ExplainError(ValueError):
    """Bad input to ``explain_file``; ``param`` is the argument at fault."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class FileExplanation:
    card: ModelCard
    label: str
    index: int
    probability: float
    grid: np.ndarray  # (H, W) heatmap in [0, 1]
    overlay_path: Path


def resolve_model_file(model: Path) -> Path:
    """A model.onnx, a version folder holding one, or a model folder (newest version)."""
    if model.is_file():
        return model
    if (model / MODEL_FILE).is_file():
        return model / MODEL_FILE
    newest = newest_model_file(model)
    if newest is None:
        raise ExplainError(
            f"{model} holds no {MODEL_FILE}: give a model folder (models/NAME), a version "
            f"folder (models/NAME/1) or the .onnx file",
            "model",
        )
    return newest


def default_overlay_path(image: Path) -> Path:
    return image.with_name(f"{image.stem}.cam.png")


def explain_file(
    image_path: Path,
    model: Path,
    *,
    label: str | None = None,
    out: Path | None = None,
    opacity: float = 0.5,
) -> FileExplanation:
    import onnxruntime as ort

    onnx_path = resolve_model_file(model)
    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        card = card_from_metadata(session.get_modelmeta().custom_metadata_map)
        check_explainable(card)
    except (CardError, NotExplainableError) as exc:
        raise ExplainError(f"{onnx_path}: {exc}", "model") from exc
    except Exception as exc:  # onnxruntime's own exception types for unreadable files
        raise ExplainError(f"{onnx_path} is not a loadable ONNX file: {exc}", "model") from exc
    assert card.class_activation_maps is not None
    spec = card.preprocessing
    try:
        image = decode_image(image_path.read_bytes(), spec, FILE_MAX_PIXELS)
    except (OSError, DecodeError) as exc:
        raise ExplainError(f"cannot read {image_path} as an image: {exc}", "image") from exc
    try:
        view = model_view(image, spec)
    finally:
        image.close()
    batch = np.empty((1, *card.input_shape), dtype=np.float32)
    normalize_into(view, spec, batch[0])
    probabilities, maps = session.run(
        [card.output_name, card.class_activation_maps.output_name], {card.input_name: batch}
    )
    try:
        index = select_class(card, probabilities[0], label)
    except ValueError as exc:
        raise ExplainError(str(exc), "label") from exc
    grid = heatmap(maps[0], index)
    target = out or default_overlay_path(image_path)
    picture = png_bytes(overlay(view, grid, opacity))
    write_atomically(target, lambda handle: handle.write(picture))
    return FileExplanation(
        card, card.labels[index], index, float(probabilities[0, index]), grid, target
    )

"""What an explanation answers, on top of a prediction: per image, the class explained and
its class-activation heatmap, as a low-resolution JSON grid or a PNG overlay.

The heatmaps come from the graph's ``class_maps`` output (see ``ClassActivationMaps`` in
the card) through ``model/cam.py``: NumPy and Pillow only, no torch. A model exported
without that output cannot be explained and gets a 409 naming the reason; there is no
model-agnostic fallback (occlusion would cost one inference per masked patch).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from model.cam import NotExplainableError, check_explainable, heatmap, overlay, png_bytes
from model.card import ClassActivationMaps, ModelCard, Preprocessing
from model.preprocess import model_view
from service.inference.decode_upload import decode_image
from service.plumbing.errors import APIError

ExplainFormat = Literal["json", "png"]
GRID_DECIMALS = 4  # the grid is for display: 1e-4 of the map's range is plenty


def class_maps_of(card: ModelCard) -> ClassActivationMaps:
    """The card's class-map output, or the 409 saying why this model cannot be explained."""
    try:
        check_explainable(card)
    except NotExplainableError as exc:
        raise APIError(
            "not_explainable", str(exc), {"model": card.name, "version": card.version}
        ) from exc
    assert card.class_activation_maps is not None
    return card.class_activation_maps


def check_label(card: ModelCard, label: str | None) -> None:
    if label is not None and label not in card.labels:
        raise APIError(
            "invalid_parameter",
            f"label {label!r} is not one of model {card.name}'s labels: {', '.join(card.labels)}",
            {"parameter": "label", "labels": list(card.labels)},
        )


def choose_format(requested: str | None, accept: str | None, images: int) -> ExplainFormat:
    """``format`` wins; else ``Accept: image/png`` asks for the overlay; else JSON."""
    if requested is None:
        wants_png = accept is not None and "image/png" in accept and "json" not in accept
        requested = "png" if wants_png else "json"
    if requested not in ("json", "png"):
        raise APIError(
            "invalid_parameter",
            f"format must be json or png, got {requested!r}",
            {"parameter": "format"},
        )
    if requested == "png" and images != 1:
        raise APIError(
            "invalid_parameter",
            f"format=png draws one overlay and takes exactly one image; got {images}",
            {"parameter": "format", "images": images},
        )
    return "png" if requested == "png" else "json"


def explained_indices(card: ModelCard, probabilities: np.ndarray, label: str | None) -> list[int]:
    if label is not None:
        return [card.labels.index(label)] * len(probabilities)
    return [int(i) for i in np.argmax(probabilities, axis=1)]


def explanations(
    card: ModelCard, probabilities: np.ndarray, maps: np.ndarray, indices: list[int]
) -> list[dict[str, Any]]:
    """One ``{"label", "index", "probability", "grid", "grid_size"}`` per image."""
    answers = []
    for row, index in enumerate(indices):
        grid = heatmap(maps[row], index)
        answers.append(
            {
                "label": card.labels[index],
                "index": index,
                "probability": float(probabilities[row, index]),
                "grid": np.round(grid, GRID_DECIMALS).tolist(),
                "grid_size": list(grid.shape),
            }
        )
    return answers


def render_overlay(
    data: bytes, spec: Preprocessing, max_pixels: int, grid: np.ndarray, opacity: float
) -> bytes:
    """The PNG of ``grid`` over the image the model saw (blocking: run it off the loop)."""
    image = decode_image(data, spec, max_pixels)
    try:
        view = model_view(image, spec)
    finally:
        image.close()
    return png_bytes(overlay(view, grid, opacity))

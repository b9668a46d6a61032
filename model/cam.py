"""Class-activation heatmaps with NumPy and Pillow: what the service and the CLI draw.

The exported graph's ``class_maps`` output (see ``ClassActivationMaps`` in the card) holds,
per class, the last feature map weighted by the classifier. A heatmap is one class's map
through a ReLU and scaled to [0, 1] by its minimum and maximum, the normalisation
pytorch-grad-cam applies, so the two agree map for map. No torch: the serving image has none.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from model.card import ModelCard

# The overlay is drawn at least this many pixels on its shorter side: model inputs are
# often 28-64 px, too small to see anything on.
OVERLAY_MIN_SIDE = 256
_EPSILON = 1e-7  # pytorch-grad-cam's, so all-zero maps stay zero the same way


class NotExplainableError(ValueError):
    """The model file carries no class-activation maps."""


def check_explainable(card: ModelCard) -> None:
    """Raise ``NotExplainableError`` saying why a model cannot be explained."""
    if card.class_activation_maps is None:
        raise NotExplainableError(
            f"model {card.name} version {card.version} ({card.architecture}) has no "
            "class-activation maps: it was exported before explanations existed, or its "
            "architecture's head is not global average pooling plus one linear layer; "
            "re-export it with `rectifier export` (simple_cnn, resnet18/34/50 and "
            "efficientnet_b0 exports carry them)"
        )


def select_class(card: ModelCard, probabilities: np.ndarray, label: str | None) -> int:
    """The class to explain: ``label`` when given, else the most probable one."""
    if label is None:
        return int(np.argmax(probabilities))
    if label not in card.labels:
        raise ValueError(
            f"unknown label {label!r}; model {card.name} has: {', '.join(card.labels)}"
        )
    return card.labels.index(label)


def heatmap(class_maps: np.ndarray, index: int) -> np.ndarray:
    """(classes, H, W) maps of one image -> class ``index``'s (H, W) heatmap in [0, 1]."""
    cam = np.maximum(class_maps[index].astype(np.float32), 0.0)
    cam -= cam.min()
    return cam / (_EPSILON + cam.max())


def upsample(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) heatmap to ``size`` = (width, height)."""
    image = Image.fromarray(np.ascontiguousarray(heat, dtype=np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def _jet(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> (..., 3) float RGB of the 'jet' colour map (blue low, red high)."""
    scaled = np.clip(x, 0.0, 1.0)[..., None] * 4.0
    centres = np.array([3.0, 2.0, 1.0], dtype=np.float32)  # red, green, blue peaks
    return np.clip(1.5 - np.abs(scaled - centres), 0.0, 1.0)


# 256 entries: colouring an overlay is one table lookup per pixel.
_JET_TABLE = np.rint(_jet(np.linspace(0.0, 1.0, 256, dtype=np.float32)) * 255.0).astype(np.uint8)


def colorize(heat: np.ndarray) -> np.ndarray:
    """[0, 1] heatmap -> (H, W, 3) uint8 in the 'jet' colour map, 256 levels."""
    levels = np.rint(np.clip(heat, 0.0, 1.0) * 255.0).astype(np.uint8)
    return _JET_TABLE[levels]


def overlay(view: Image.Image, heat: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """Blend the coloured heatmap over ``view`` (the image the model saw, from
    ``model.preprocess.model_view``), enlarged to at least ``OVERLAY_MIN_SIDE`` a side."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    scale = max(1, -(-OVERLAY_MIN_SIDE // min(view.size)))
    size = (view.width * scale, view.height * scale)
    base = _displayable(view).resize(size, Image.Resampling.BICUBIC)
    colours = Image.fromarray(colorize(upsample(heat, size)), mode="RGB")
    return Image.blend(base, colours, opacity)


def _displayable(view: Image.Image) -> Image.Image:
    """RGB for drawing; float grayscale (16-bit and DICOM inputs, 0..255) is rounded."""
    if view.mode == "F":
        pixels = np.clip(np.rint(np.asarray(view, dtype=np.float32)), 0, 255).astype(np.uint8)
        view = Image.fromarray(pixels, mode="L")
    return view.convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    """Fast PNG: level 1 compression costs a few times less CPU than the default for a
    file perhaps 30% larger, the right trade for an answer made per request."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()

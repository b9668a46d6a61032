"""What the shared inference path accepts, whatever protocol carried it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorBatch:
    """Preprocessed images: float32 NCHW, finite, aligned; may be a read-only view on the
    request body."""

    array: np.ndarray


@dataclass(frozen=True)
class EncodedImages:
    """Encoded image files, one per batch entry, to decode and preprocess with the card."""

    images: tuple[bytes, ...]


ModelInput = TensorBatch | EncodedImages

"""What the shared inference path accepts, whatever protocol carried it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.card import Preprocessing


@dataclass(frozen=True)
class TensorBatch:
    """Preprocessed images: float32 NCHW, finite, aligned; may be a read-only view on the
    request body."""

    array: np.ndarray


@dataclass(frozen=True)
class EncodedImages:
    """Encoded image files, one per batch entry, to decode and preprocess with the card.

    ``frame``: the frame the request chose for multi-frame files (it overrides the card's
    ``preprocessing.frame``; model/decoding/frames.py).
    """

    images: tuple[bytes, ...]
    frame: int | None = None

    def preprocessing(self, card: Preprocessing) -> Preprocessing:
        """The card's preprocessing, with the request's frame when it chose one."""
        return card if self.frame is None else card.model_copy(update={"frame": self.frame})


ModelInput = TensorBatch | EncodedImages

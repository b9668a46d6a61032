"""What both peer servers share: the model and its card, read straight from the ONNX file,
and the textbook preprocessing a user writes by hand (PIL convert, resize the shorter side,
centre-crop, scale and normalise with NumPy), so the peers differ from Rectifier in how they
serve, not in what they compute.

Imports neither torch nor this repository's packages: it also runs in the BentoML venv.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

CARD_KEY = "rectifier.card"
_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class PeerModel:
    session: ort.InferenceSession
    input_name: str
    labels: list[str]
    color_mode: str
    resize_size: int
    crop_size: int
    interpolation: str
    scale: np.ndarray  # 1 / (255 * std), shaped (C, 1, 1)
    shift: np.ndarray  # mean / std, shaped (C, 1, 1)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        image = image.convert(self.color_mode)
        width, height = image.size
        ratio = self.resize_size / min(width, height)
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        image = image.resize(size, _RESAMPLING[self.interpolation])
        left = round((size[0] - self.crop_size) / 2)
        top = round((size[1] - self.crop_size) / 2)
        image = image.crop((left, top, left + self.crop_size, top + self.crop_size))
        pixels = np.asarray(image, dtype=np.float32)
        chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return chw * self.scale - self.shift

    def predict(self, batch: np.ndarray, top_k: int = 5) -> list[list[dict[str, Any]]]:
        # All outputs, as the service runs them (class_maps too, where the export has them).
        probabilities = self.session.run(None, {self.input_name: batch})[0]
        results = []
        for row in probabilities:
            best = np.argsort(row)[::-1][:top_k]
            results.append([{"label": self.labels[i], "probability": float(row[i])} for i in best])
        return results


def load_peer_model(path: str | None = None, threads: int | None = None) -> PeerModel:
    """The model at ``path`` (default ``$PEER_MODEL``) on the CPU provider."""
    path = path or os.environ["PEER_MODEL"]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or int(os.environ.get("PEER_THREADS", "0"))
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    card = json.loads(session.get_modelmeta().custom_metadata_map[CARD_KEY])
    spec = card["preprocessing"]
    mean = np.asarray(spec["mean"], np.float32)[:, None, None]
    std = np.asarray(spec["std"], np.float32)[:, None, None]
    return PeerModel(
        session=session,
        input_name=session.get_inputs()[0].name,
        labels=list(card["labels"]),
        color_mode=spec["color_mode"],
        resize_size=spec["resize_size"],
        crop_size=spec["crop_size"],
        interpolation=spec.get("interpolation", "bilinear"),
        scale=(1.0 / (255.0 * std)).astype(np.float32),
        shift=(mean / std).astype(np.float32),
    )

"""Peer: BentoML serving the same ONNX file with its adaptive batching.

Runs in its own virtual environment (``bench/.venv-bentoml``, made by ``bench/run.py``).
The batchable API takes the multipart field ``images`` and BentoML's dispatcher merges
concurrent requests into one call, up to ``PEER_MAX_BATCH`` images.

    cd bench/peers && PEER_MODEL=... bentoml serve bentoml_service:Classifier \
        --host 127.0.0.1 --port 8300
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import numpy as np
from common import load_peer_model  # bentoml imports this file as a top-level module
from PIL.Image import Image

MAX_BATCH = int(os.environ.get("PEER_MAX_BATCH", "32"))


@bentoml.service(workers=1, traffic={"timeout": 60})
class Classifier:
    def __init__(self) -> None:
        self.model = load_peer_model()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=10_000)
    def classify(self, images: list[Image]) -> list[list[dict[str, Any]]]:
        batch = np.stack([self.model.preprocess(image) for image in images])
        return self.model.predict(batch)

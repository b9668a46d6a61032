"""Warm-up: a model's first runs happen at load, not in a request."""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort

from model.card import ModelCard


def warm_up(
    session: ort.InferenceSession, card: ModelCard, outputs: list[str], max_batch_size: int
) -> float:
    """Run a batch of one and a full batch once (first-run allocations happen here, not in
    a request); return the fastest of three batch-1 runs after that, in seconds (what the
    stream policy, ``service.inference.streams``, decides by)."""
    for rows in sorted({1, max_batch_size}):
        batch = np.zeros((rows, *card.input_shape), dtype=np.float32)
        session.run(outputs, {card.input_name: batch})
    single = {card.input_name: np.zeros((1, *card.input_shape), dtype=np.float32)}
    times = []
    for _ in range(3):
        started = time.perf_counter()
        session.run(outputs, single)
        times.append(time.perf_counter() - started)
    return min(times)

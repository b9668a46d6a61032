"""How fast an exported model answers: onnxruntime, CPU, batch 1, one thread."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

LATENCY_RUNS = 50


def onnx_latency_ms(path: Path, runs: int = LATENCY_RUNS) -> float:
    """Median batch-1 latency in one thread (threads would make the sweep's figures depend
    on what else the machine runs)."""
    import onnxruntime as ort

    from model.card import read_card

    card = read_card(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).standard_normal((1, *card.input_shape)).astype(np.float32)
    feed = {card.input_name: batch}
    for _ in range(5):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))

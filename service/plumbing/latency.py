"""A model's live latency window: the last requests' latencies, for percentiles."""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyWindow:
    """The last ``size`` request latencies of a model, for live percentiles."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentiles_ms(self) -> dict[str, float | int | None]:
        values = np.fromiter(self._values, dtype=np.float64)
        if values.size == 0:
            return {"count": 0, "p50": None, "p90": None, "p99": None}
        p50, p90, p99 = np.percentile(values, [50, 90, 99]) * 1000.0
        return {"count": int(values.size), "p50": p50, "p90": p90, "p99": p99}

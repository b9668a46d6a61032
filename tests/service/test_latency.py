"""A model's live latency window."""

from __future__ import annotations

import pytest

from service.plumbing.latency import LatencyWindow


def test_an_empty_window_has_no_percentiles():
    assert LatencyWindow().percentiles_ms() == {"count": 0, "p50": None, "p90": None, "p99": None}


def test_the_window_keeps_the_last_values_in_milliseconds():
    window = LatencyWindow(size=100)
    for ms in range(1, 201):  # the first 100 fall out
        window.add(ms / 1000.0)
    stats = window.percentiles_ms()
    assert stats["count"] == 100
    assert stats["p50"] == pytest.approx(150.5)
    assert stats["p99"] == pytest.approx(199.01)

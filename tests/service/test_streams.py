"""The stream policy: two concurrent batches only where the GIL, not the cores, paces one."""

from __future__ import annotations

import pytest

from service.inference.streams import auto_streams


@pytest.mark.parametrize(
    ("providers", "single_run_s", "cpus", "streams"),
    [
        (["CPUExecutionProvider"], 0.0005, 2, 2),  # short runs: the GIL paces one worker
        (["CPUExecutionProvider"], 0.030, 2, 1),  # resnet18-like: the cores do
        (["CPUExecutionProvider"], 0.0005, 1, 1),  # one core (or one worker's share of 2)
        (["CUDAExecutionProvider", "CPUExecutionProvider"], 0.0005, 16, 1),
        (["CPUExecutionProvider"], None, 2, 1),  # no warm-up, no timing: the safe choice
    ],
)
def test_auto_streams(providers, single_run_s, cpus, streams):
    assert auto_streams(providers, single_run_s, cpus) == streams

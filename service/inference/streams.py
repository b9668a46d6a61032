"""The stream policy: how many batches of a model run at once when the settings leave it
to the service (``RECTIFIER_INFERENCE_STREAMS`` unset)."""

from __future__ import annotations

import sys

from service.inference.providers import CPU


def auto_streams(providers: list[str], single_run_s: float | None, cpus: int) -> int:
    """Concurrent batches for a model when ``RECTIFIER_INFERENCE_STREAMS`` is not set.

    ``cpus``: the cores this process's onnxruntime may use (``intra_op_threads``, a worker's
    or a Ray replica's share). Two on the CPU, with two ``cpus`` or more, when a batch-1 run
    is shorter than the GIL switch interval: such a model's batches are so short that the
    GIL, not the cores, paces a single worker, and a second worker runs a batch while the
    first waits to win the GIL back from the event loop. One otherwise: a long run
    (resnet18 on the CPU, any GPU) gains nothing, and two would split the cores between two
    runs, slowing a lone request. docs/BENCHMARKS.md ("Levers") has the measurements.
    """
    if single_run_s is None or providers[:1] != [CPU] or cpus < 2:
        return 1
    return 2 if single_run_s < sys.getswitchinterval() else 1

"""How long ``session.run`` takes when another Python thread holds the GIL:
``python bench/gil_convoy.py``.

onnxruntime releases the GIL while it runs, but the calling thread must win it back to
return, and a thread that wants the GIL from a busy one waits up to
``sys.getswitchinterval()`` (5 ms) before the holder is made to drop it. In the server
the busy thread is the event loop; here it is a thread counting in a loop. Each case
alternates over the rounds: alone; beside a busy Python thread; beside a busy process
(the same CPU contention, no GIL); beside a busy Python thread with a 0.5 ms switch
interval. Medians per case of the per-round medians, in ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def python_thread_busy() -> Iterator[None]:
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def process_busy() -> Iterator[None]:
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.2)
    try:
        yield
    finally:
        process.kill()
        process.wait()


@contextmanager
def short_switch_interval(inner: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        with inner():
            yield
    finally:
        sys.setswitchinterval(previous)


@contextmanager
def nothing() -> Iterator[None]:
    yield


CASES: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "alone": nothing,
    "beside a busy Python thread": python_thread_busy,
    "beside a busy process": process_busy,
    "busy Python thread, 0.5 ms switch interval": lambda: short_switch_interval(python_thread_busy),
}


def run_ms(session: ort.InferenceSession, batch: int, seconds: float) -> float:
    name = session.get_inputs()[0].name
    shape = [batch, *session.get_inputs()[0].shape[1:]]
    inputs = {name: np.zeros(shape, dtype=np.float32)}
    session.run(None, inputs)
    times = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        begun = time.perf_counter()
        session.run(None, inputs)
        times.append(time.perf_counter() - begun)
    return statistics.median(times) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "demo" / "1" / "model.onnx")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    parser.add_argument("--batches", type=lambda t: [int(x) for x in t.split(",")], default=[1, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="per case and round")
    args = parser.parse_args(argv)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    results: dict[tuple[int, str], list[float]] = {}
    for _ in range(args.rounds):
        for batch in args.batches:
            for case, context in CASES.items():
                with context():
                    results.setdefault((batch, case), []).append(
                        run_ms(session, batch, args.seconds)
                    )
    print(f"session.run, {args.model.parent.parent.name}, {args.threads} intra-op threads, "
          f"median ms (per-round medians):")  # fmt: skip
    for (batch, case), values in results.items():
        spread = ", ".join(f"{v:.2f}" for v in values)
        print(f"  batch {batch:>3}  {case:<45} {statistics.median(values):7.2f}  ({spread})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

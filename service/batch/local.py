"""The local engine: the per-batch function in this process, batch after batch.

Inputs stream (a video's frames are decoded as they are reached), so memory stays flat
whatever the run's size. Rows are written as a part every ``chunk_rows`` rows. Ctrl-C
stops the run after the batch in hand: the rows so far are written and finalised into
FILE, the parts kept for ``--resume``; a second Ctrl-C stops at once (the parts on disk
are still whole).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any, TypeVar

from service.batch.output import OutputSink
from service.batch.predictor import BatchPredictor, Row, expand_inputs
from service.batch.report import Summary, progress_bar
from service.batch.sources import WorkItem

T = TypeVar("T")


def batched(values: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch


@contextmanager
def stop_on_interrupt() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C (SIGINT); the second raises KeyboardInterrupt."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_local(
    items: list[WorkItem],
    predictor: BatchPredictor,
    sink: OutputSink,
    *,
    chunk_rows: int,
    total: int | None,
    summary: Summary,
) -> Summary:
    """Predict ``items`` into ``sink``; the summary says what happened."""
    started = time.perf_counter()
    inputs = expand_inputs(items, predictor.config.selection)
    batches = (predictor.predict(batch) for batch in batched(inputs, predictor.batch_size))
    drain(batches, sink, summary, chunk_rows=chunk_rows, total=total)
    summary.add_seconds(predictor.seconds)
    summary.add_seconds({"write": sink.write_seconds})
    summary.wall_seconds = time.perf_counter() - started
    return summary


def drain(
    batches: Iterable[list[Row]],
    sink: OutputSink,
    summary: Summary,
    *,
    chunk_rows: int,
    total: int | None,
) -> None:
    """Every engine's end of the run: rows counted and shown on the progress bar, written
    a part per ``chunk_rows``, finalised into FILE; the first Ctrl-C stops after the batch
    in hand (FILE then holds the rows so far, the parts stay for ``--resume``)."""
    bar = progress_bar(total)
    buffer: list[Row] = []
    started = time.perf_counter()
    try:
        with stop_on_interrupt() as stop:
            for rows in batches:
                summary.count(rows, time.perf_counter() - started)
                bar.update(len(rows))
                buffer.extend(rows)
                if len(buffer) >= chunk_rows:
                    sink.write(buffer)
                    buffer = []
                if stop.is_set():
                    summary.interrupted = True
                    break
            sink.write(buffer)
    finally:
        bar.close()
    sink.finalise(complete=not summary.interrupted)

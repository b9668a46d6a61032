"""Dynamic batching: worker threads per model turn queued requests into batches.

Requests hold a place in the model's bound (``admit``, ``max_queue`` places) from decoding
to the answer and enqueue their preprocessed tensors (``submit``). A free worker takes everything
queued, up to ``max_batch_size`` images, runs one ``session.run`` on it and resolves each
request's future with its rows. An idle server therefore adds no waiting and a busy one
batches by itself; ``max_batch_delay_ms`` can trade latency for fuller batches. Workers
are plain threads, so inference never runs on the event loop, and each hands results back
with a single ``call_soon_threadsafe`` per batch. If a batch fails, each request in it is
retried alone, so only the request that caused the failure gets the error.

``streams`` workers run batches concurrently (onnxruntime's ``run`` is thread-safe).
With one, the next batch waits while the worker, back from ``session.run``, waits to win
the GIL from the busy event loop (up to ``sys.getswitchinterval()``, 5 ms); a second
worker runs a batch in that time (docs/BENCHMARKS.md, "Levers").
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from service.plumbing.errors import APIError

log = logging.getLogger(__name__)

RunFn = Callable[[np.ndarray], Sequence[np.ndarray]]
BatchObserver = Callable[[int, float], None]


class InferenceError(RuntimeError):
    """``session.run`` failed for this request (alone, after isolating it from its batch)."""


@dataclass(frozen=True)
class BatchResult:
    """The outputs of one request (one array per graph output, its rows only)."""

    outputs: list[np.ndarray]
    queue_s: float
    inference_s: float
    batch_size: int


class _Pending:
    __slots__ = ("enqueued", "future", "inputs", "rows")

    def __init__(self, inputs: np.ndarray, future: asyncio.Future[BatchResult]) -> None:
        self.inputs = inputs
        self.rows = int(inputs.shape[0])
        self.future = future
        self.enqueued = time.perf_counter()


class DynamicBatcher:
    """Per-model request queue served by ``streams`` inference worker threads."""

    def __init__(
        self,
        run: RunFn,
        *,
        name: str,
        max_batch_size: int = 32,
        max_queue: int = 256,
        max_delay_s: float = 0.0,
        retry_after_s: int = 1,
        on_batch: BatchObserver | None = None,
        streams: int = 1,
    ) -> None:
        self._run = run
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.max_delay_s = max_delay_s
        self.retry_after_s = retry_after_s
        self._on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        # One worker gathers a batch at a time, so a batch delay still fills one batch.
        self._gathering = threading.Lock()
        self._stopping = False
        self._admitted = 0
        self._buffers = threading.local()  # each worker stacks into its own buffer
        self._loop: asyncio.AbstractEventLoop | None = None
        self.streams = streams
        self._threads = [
            threading.Thread(target=self._work, name=f"batcher-{name}-{index}", daemon=True)
            for index in range(streams)
        ]

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch (not counting those in the batches running)."""
        return len(self._queue)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for thread in self._threads:
            thread.start()

    async def submit(self, inputs: np.ndarray) -> BatchResult:
        """Queue a (N, ...) input tensor; returns its N output rows once its batch ran.

        Raises ``APIError`` ``not_ready`` once stopping, and ``InferenceError`` when the
        model fails on it. The bound on requests is ``admit``'s, taken before this.
        """
        loop = self._serving_loop()
        future: asyncio.Future[BatchResult] = loop.create_future()
        self._enqueue(inputs, future)
        return await future

    def put(self, inputs: np.ndarray, future: asyncio.Future[BatchResult]) -> None:
        """Queue ``inputs`` from any thread; ``future`` (of the batcher's loop) gets the result.

        The decode pool calls this directly after preprocessing, which saves a round trip
        through the event loop. Raises ``APIError`` like ``submit``.
        """
        self._serving_loop()
        self._enqueue(inputs, future)

    def _serving_loop(self) -> asyncio.AbstractEventLoop:
        """The loop results go to; ``not_ready`` before ``start`` and once stopping."""
        if self._stopping or self._loop is None:
            raise APIError("not_ready", f"model {self.name} is not accepting requests")
        return self._loop

    def _enqueue(self, inputs: np.ndarray, future: asyncio.Future[BatchResult]) -> None:
        item = _Pending(inputs, future)
        with self._cond:
            self._queue.append(item)
            self._cond.notify()

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``max_queue`` places from decoding to the answer (event loop only).

        The image API admits a request once its body is in, so requests waiting for the
        decode pool count against the same bound as those waiting for a batch, and a slow
        upload holds no place while it streams. Raises what ``check_capacity`` raises.
        """
        self.check_capacity()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    def check_capacity(self) -> None:
        """The model's bound, the one rule: ``queue_full`` (503 with Retry-After) when
        ``max_queue`` requests hold a place, ``not_ready`` once stopping.

        ``admit`` applies it when a request takes its place; the shared path also asks it
        before reading a body, so an overloaded server refuses at once instead of after
        the upload. Whatever is queued was admitted, so ``put`` need not ask again.
        """
        self._serving_loop()
        if self._admitted >= self.max_queue:
            raise APIError(
                "queue_full",
                f"the queue of model {self.name} is full ({self.max_queue} requests waiting); "
                "retry later",
                {"max_queue": self.max_queue},
                headers={"Retry-After": str(self.retry_after_s)},
            )

    @property
    def admitted(self) -> int:
        """Requests admitted with ``admit`` and not answered yet."""
        return self._admitted

    def stop(self, timeout: float | None = None) -> None:
        """Finish everything queued, then end the workers (``timeout`` bounds the wait)."""
        stop_batchers([self], timeout)

    def begin_stop(self) -> None:
        """Refuse new work; the workers end once the queue is empty."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join_workers(self, deadline: float | None) -> None:
        """Wait for the workers until ``deadline`` (``time.monotonic()``; None: no bound)."""
        for thread in self._threads:
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # -- worker threads ------------------------------------------------------------------

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            if batch:
                self._execute(batch)

    def _take(self) -> list[_Pending] | None:
        """Wait for work; return what is queued up to ``max_batch_size`` rows (None: stop)."""
        with self._gathering, self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            batch = [self._queue.popleft()]
            rows = batch[0].rows
            deadline = time.perf_counter() + self.max_delay_s
            while rows < self.max_batch_size:
                if not self._queue:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0 or self._stopping:
                        break
                    self._cond.wait(remaining)
                    continue
                if rows + self._queue[0].rows > self.max_batch_size:
                    break
                item = self._queue.popleft()
                batch.append(item)
                rows += item.rows
        # Requests whose client went away are dropped before they cost inference time.
        return [item for item in batch if not item.future.cancelled()]

    def _stack(self, batch: list[_Pending]) -> np.ndarray:
        if len(batch) == 1:
            return batch[0].inputs
        rows = sum(item.rows for item in batch)
        first = batch[0].inputs
        buffer: np.ndarray | None = getattr(self._buffers, "array", None)
        if (
            buffer is None
            or buffer.shape[1:] != first.shape[1:]
            or buffer.dtype != first.dtype
            or buffer.shape[0] < rows
        ):
            buffer = np.empty((max(rows, self.max_batch_size), *first.shape[1:]), first.dtype)
            self._buffers.array = buffer
        # Safe to reuse: this worker stacks its next batch only after this run returned.
        return np.concatenate([item.inputs for item in batch], axis=0, out=buffer[:rows])

    def _run_rows(self, inputs: np.ndarray) -> list[np.ndarray]:
        """One session.run, or several when a single request exceeds ``max_batch_size``."""
        if inputs.shape[0] <= self.max_batch_size:
            return list(self._run(inputs))
        chunks = [
            self._run(inputs[start : start + self.max_batch_size])
            for start in range(0, inputs.shape[0], self.max_batch_size)
        ]
        return [np.concatenate(parts, axis=0) for parts in zip(*chunks, strict=True)]

    def _execute(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        resolutions: list[tuple[asyncio.Future[BatchResult], BatchResult | BaseException]] = []
        try:
            inputs = self._stack(batch)
            outputs = self._run_rows(inputs)
        except Exception as exc:
            if len(batch) == 1:
                log.error("model %s: inference failed: %s", self.name, exc)
                resolutions.append((batch[0].future, _inference_error(self.name, exc)))
            else:  # isolate the request that broke the batch
                log.warning(
                    "model %s: batch of %d failed (%s); retrying one by one",
                    self.name,
                    len(batch),
                    exc,
                )
                for item in batch:
                    self._execute([item])
                return
        else:
            finished = time.perf_counter()
            rows = int(inputs.shape[0])
            if self._on_batch is not None:
                self._on_batch(rows, finished - started)
            offset = 0
            for item in batch:
                end = offset + item.rows
                result = BatchResult(
                    outputs=[out[offset:end] for out in outputs],
                    queue_s=started - item.enqueued,
                    inference_s=finished - started,
                    batch_size=rows,
                )
                resolutions.append((item.future, result))
                offset = end
        self._resolve(resolutions)

    def _resolve(
        self, resolutions: list[tuple[asyncio.Future[BatchResult], BatchResult | BaseException]]
    ) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(_set_results, resolutions)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug(
                "model %s: event loop closed, dropping %d results", self.name, len(resolutions)
            )


def stop_batchers(batchers: Iterable[DynamicBatcher], timeout: float | None = None) -> None:
    """Stop ``batchers`` together: each finishes what is queued, and ``timeout`` bounds the
    whole wait, shared by all of them (one deadline, not one ``timeout`` per batcher)."""
    batchers = list(batchers)
    for batcher in batchers:
        batcher.begin_stop()
    deadline = None if timeout is None else time.monotonic() + timeout
    for batcher in batchers:
        batcher.join_workers(deadline)


def _inference_error(name: str, exc: Exception) -> InferenceError:
    error = InferenceError(f"model {name}: inference failed: {exc}")
    error.__cause__ = exc
    return error


def _set_results(
    resolutions: list[tuple[asyncio.Future[BatchResult], BatchResult | BaseException]],
) -> None:
    for future, outcome in resolutions:
        if future.done():  # cancelled by a disconnected client
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

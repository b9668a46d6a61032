from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from service.inference.batching import BatchResult, DynamicBatcher, InferenceError
from service.plumbing.errors import APIError


class FakeModel:
    """Doubles its input (so each row's output proves where it came from); records batches."""

    def __init__(self, delay: float = 0.0, poison: float | None = None) -> None:
        self.delay = delay
        self.poison = poison
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, inputs: np.ndarray) -> Sequence[np.ndarray]:
        self.gate.wait(5)
        self.batches.append(int(inputs.shape[0]))
        if self.poison is not None and (inputs == self.poison).any():
            raise RuntimeError("poisoned input")
        time.sleep(self.delay)
        return [inputs * 2.0, inputs.sum(axis=(1, 2, 3))]


def rows(*values: float) -> np.ndarray:
    return np.stack([np.full((1, 2, 2), v, np.float32) for v in values])


async def started(model: FakeModel, **options) -> DynamicBatcher:
    batcher = DynamicBatcher(model, name="fake", **options)
    batcher.start(asyncio.get_running_loop())
    return batcher


def test_results_go_back_to_their_requests_in_order():
    async def scenario() -> None:
        model = FakeModel(delay=0.01)
        batcher = await started(model, max_batch_size=8)
        requests = [rows(i) if i % 3 else rows(i, i + 0.5) for i in range(20)]
        results = await asyncio.gather(*(batcher.submit(r) for r in requests))
        for request, result in zip(requests, results, strict=True):
            np.testing.assert_array_equal(result.outputs[0], request * 2.0)
            assert result.outputs[1].shape == (request.shape[0],)
        assert max(model.batches) > 1  # a busy batcher batches
        assert all(size <= 8 for size in model.batches)
        batcher.stop(5)

    asyncio.run(scenario())


def test_idle_batcher_runs_at_once_without_delay():
    async def scenario() -> None:
        model = FakeModel()
        batcher = await started(model, max_batch_size=32)
        for value in range(5):
            begun = time.perf_counter()
            result = await batcher.submit(rows(value))
            assert time.perf_counter() - begun < 0.05
            assert result.batch_size == 1
            assert result.queue_s < 0.05
        assert model.batches == [1] * 5
        batcher.stop(5)

    asyncio.run(scenario())


@pytest.mark.parametrize("streams", [1, 3])  # with streams, one worker gathers at a time
def test_max_delay_gathers_a_fuller_batch(streams):
    async def scenario() -> None:
        model = FakeModel()
        batcher = await started(model, max_batch_size=4, max_delay_s=0.2, streams=streams)
        first = asyncio.ensure_future(batcher.submit(rows(1)))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(batcher.submit(rows(2)))
        results = await asyncio.gather(first, second)
        assert model.batches == [2]
        assert results[0].batch_size == 2
        batcher.stop(5)

    asyncio.run(scenario())


def test_a_failing_request_does_not_fail_its_batch_mates():
    async def scenario() -> None:
        model = FakeModel(poison=-1.0)
        model.gate.clear()  # hold the worker so all three land in one batch
        batcher = await started(model, max_batch_size=8)
        blocker = asyncio.ensure_future(batcher.submit(rows(0)))
        await asyncio.sleep(0.05)
        futures = [asyncio.ensure_future(batcher.submit(rows(v))) for v in (1.0, -1.0, 3.0)]
        await asyncio.sleep(0.02)
        model.gate.set()
        await blocker
        done = await asyncio.gather(*futures, return_exceptions=True)
        np.testing.assert_array_equal(done[0].outputs[0], rows(1.0) * 2)
        assert isinstance(done[1], InferenceError)
        assert "poisoned input" in str(done[1])
        np.testing.assert_array_equal(done[2].outputs[0], rows(3.0) * 2)
        assert 3 in model.batches  # the batch was tried whole first
        batcher.stop(5)

    asyncio.run(scenario())


def test_full_bound_answers_queue_full_with_retry_after():
    async def scenario() -> None:
        model = FakeModel()
        model.gate.clear()
        batcher = await started(model, max_batch_size=1, max_queue=2, retry_after_s=3)

        async def admitted(value: float) -> BatchResult:
            with batcher.admit():
                return await batcher.submit(rows(value))

        running = asyncio.ensure_future(admitted(0))
        await asyncio.sleep(0.05)  # the worker holds this one
        queued = asyncio.ensure_future(admitted(1))
        await asyncio.sleep(0.01)
        with pytest.raises(APIError) as info, batcher.admit():
            pass
        assert info.value.code == "queue_full"
        assert info.value.status_code == 503
        assert info.value.headers["Retry-After"] == "3"
        model.gate.set()
        await asyncio.gather(running, queued)
        assert batcher.queue_depth == 0
        await admitted(4)  # accepted again once answered
        batcher.stop(5)

    asyncio.run(scenario())


def test_request_larger_than_max_batch_runs_in_chunks():
    async def scenario() -> None:
        model = FakeModel()
        batcher = await started(model, max_batch_size=4)
        big = rows(*range(10))
        result = await batcher.submit(big)
        np.testing.assert_array_equal(result.outputs[0], big * 2)
        assert model.batches == [4, 4, 2]
        batcher.stop(5)

    asyncio.run(scenario())


def test_cancelled_requests_are_dropped_before_inference():
    async def scenario() -> None:
        model = FakeModel()
        model.gate.clear()
        batcher = await started(model, max_batch_size=8)
        running = asyncio.ensure_future(batcher.submit(rows(0)))
        await asyncio.sleep(0.05)
        abandoned = asyncio.ensure_future(batcher.submit(rows(1, 1, 1)))
        kept = asyncio.ensure_future(batcher.submit(rows(2)))
        await asyncio.sleep(0.01)
        abandoned.cancel()
        model.gate.set()
        await asyncio.gather(running, kept)
        assert model.batches == [1, 1]
        assert batcher.queue_depth == 0
        batcher.stop(5)

    asyncio.run(scenario())


def test_stop_finishes_queued_work_then_refuses():
    async def scenario() -> None:
        model = FakeModel(delay=0.02)
        batcher = await started(model, max_batch_size=1)
        pending = [asyncio.ensure_future(batcher.submit(rows(v))) for v in range(4)]
        await asyncio.sleep(0)
        await asyncio.to_thread(batcher.stop, 5)
        results = await asyncio.gather(*pending)
        assert [float(r.outputs[0][0, 0, 0, 0]) for r in results] == [0.0, 2.0, 4.0, 6.0]
        with pytest.raises(APIError) as info:
            await batcher.submit(rows(9))
        assert info.value.code == "not_ready"

    asyncio.run(scenario())


def test_admission_bounds_requests_before_they_reach_the_queue():
    async def scenario() -> None:
        batcher = await started(FakeModel(), max_queue=2)
        with batcher.admit(), batcher.admit():
            assert batcher.admitted == 2
            with pytest.raises(APIError) as info, batcher.admit():
                pass
            assert info.value.code == "queue_full"
            with pytest.raises(APIError):
                batcher.check_capacity()
        assert batcher.admitted == 0
        with batcher.admit():
            await batcher.submit(rows(1))
        batcher.stop(5)

    asyncio.run(scenario())


def test_streams_run_batches_concurrently():
    async def scenario() -> None:
        both_running = threading.Barrier(2, timeout=5)

        def model(inputs: np.ndarray) -> Sequence[np.ndarray]:
            both_running.wait()  # one stream alone would time out here
            return [inputs * 2.0]

        batcher = await started(model, max_batch_size=8, streams=2)
        first = asyncio.ensure_future(batcher.submit(rows(1)))
        await asyncio.sleep(0.05)  # the first stream holds it, waiting for a partner
        second = await batcher.submit(rows(2))
        np.testing.assert_array_equal((await first).outputs[0], rows(1) * 2)
        np.testing.assert_array_equal(second.outputs[0], rows(2) * 2)
        assert second.batch_size == 1
        batcher.stop(5)

    asyncio.run(scenario())


def test_stop_finishes_the_queue_and_ends_every_stream():
    async def scenario() -> None:
        model = FakeModel(delay=0.02)
        batcher = await started(model, max_batch_size=1, streams=3)
        pending = [asyncio.ensure_future(batcher.submit(rows(v))) for v in range(6)]
        await asyncio.sleep(0)
        await asyncio.to_thread(batcher.stop, 5)
        results = await asyncio.gather(*pending)
        assert [float(r.outputs[0][0, 0, 0, 0]) for r in results] == [0, 2, 4, 6, 8, 10]
        workers = [t for t in threading.enumerate() if t.name.startswith("batcher-fake-")]
        assert workers == []

    asyncio.run(scenario())

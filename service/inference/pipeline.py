"""Decode and preprocess uploads, in parallel with inference.

``ImagePipeline.prepare`` turns N encoded images into one (N, C, H, W) float32 batch for a
model, on a thread pool sized to the cores available (Pillow and NumPy release the GIL),
so decoding overlaps with the batcher's ``session.run``. The V1 image API and the Open
Inference Protocol's BYTES image input both use it.

A single small image (``inline_max_pixels``, judged from its header) is decoded on the
event loop instead: for a 64 px JPEG that is ~0.14 ms, less than what the hand-off to a
pool thread and back costs the loop once the decode thread has to win the GIL from it
(docs/BENCHMARKS.md, "Levers").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.card import Preprocessing
from model.decoding.limits import resized_pixels
from service.inference.batching import BatchResult, DynamicBatcher
from service.inference.decode_upload import PhaseTimes, decode_into, open_upload
from service.plumbing.errors import APIError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedImages:
    """A model-ready batch and the time spent on it (summed over the images)."""

    array: np.ndarray
    decode_s: float
    preprocess_s: float


class ImagePipeline:
    def __init__(self, threads: int, max_pixels: int, inline_max_pixels: int = 0) -> None:
        self.threads = threads
        self.max_pixels = max_pixels
        self.inline_max_pixels = inline_max_pixels
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")

    async def prepare(self, images: Sequence[bytes], spec: Preprocessing) -> PreparedImages:
        """Encoded images -> (N, C, H, W) float32; ``APIError`` names the failing image."""
        if not images:
            raise APIError("missing_image", "no image in the request")
        batch = np.empty((len(images), *_chw(spec)), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if len(images) == 1:
            times = [
                await loop.run_in_executor(self._executor, self._one, images[0], spec, batch, 0, 1)
            ]
        else:
            times = list(
                await asyncio.gather(
                    *(
                        loop.run_in_executor(
                            self._executor, self._one, data, spec, batch, index, len(images)
                        )
                        for index, data in enumerate(images)
                    )
                )
            )
        return PreparedImages(
            batch,
            decode_s=sum(t.decode_s for t in times),
            preprocess_s=sum(t.preprocess_s for t in times),
        )

    async def prepare_and_submit(
        self, images: Sequence[bytes], spec: Preprocessing, batcher: DynamicBatcher
    ) -> tuple[PreparedImages, BatchResult]:
        """``prepare`` then ``batcher.submit``. A single image is opened here (its header
        only); a small one is decoded here too, a larger one (or DICOM) goes from a decode
        thread straight into the batch queue, so the event loop wakes once, for the result."""
        if len(images) != 1:
            prepared = await self.prepare(images, spec)
            return prepared, await batcher.submit(prepared.array)
        data = images[0]
        started = time.perf_counter()
        opened = open_upload(data, spec, self.max_pixels)
        open_s = time.perf_counter() - started
        batch = np.empty((1, *_chw(spec)), dtype=np.float32)
        if opened is not None and self._inline(opened, spec):
            times = decode_into(data, spec, self.max_pixels, batch[0], opened)
            prepared = PreparedImages(batch, open_s + times.decode_s, times.preprocess_s)
            return prepared, await batcher.submit(batch)

        loop = asyncio.get_running_loop()
        future: asyncio.Future[BatchResult] = loop.create_future()
        done: list[PreparedImages] = []

        def decode_and_queue() -> None:
            try:
                times = decode_into(data, spec, self.max_pixels, batch[0], opened)
                done.append(PreparedImages(batch, open_s + times.decode_s, times.preprocess_s))
                batcher.put(batch, future)
            except BaseException as exc:
                loop.call_soon_threadsafe(_fail, future, exc)

        self._executor.submit(decode_and_queue)
        result = await future
        return done[0], result

    def _inline(self, opened: Image.Image, spec: Preprocessing) -> bool:
        """Whether decoding and preprocessing cost little enough for the event loop: the
        decoded image and its resized copy both hold at most ``inline_max_pixels``."""
        width, height = opened.size
        pixels = max(width * height, resized_pixels(width, height, spec))
        return pixels <= self.inline_max_pixels

    def _one(
        self, data: bytes, spec: Preprocessing, batch: np.ndarray, index: int, count: int
    ) -> PhaseTimes:
        try:
            return decode_into(data, spec, self.max_pixels, batch[index])
        except APIError as exc:
            if count > 1:  # say which image of a batch failed
                exc.message = f"image {index + 1} of {count}: {exc.message}"
                exc.args = (exc.message,)
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _chw(spec: Preprocessing) -> tuple[int, int, int]:
    return (spec.channels, spec.crop_size, spec.crop_size)


def _fail(future: asyncio.Future[BatchResult], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)

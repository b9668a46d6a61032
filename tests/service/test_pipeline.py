from __future__ import annotations

import asyncio

import numpy as np
import pytest

from model.decoding import load_and_preprocess
from service.batching import DynamicBatcher
from service.errors import APIError
from service.pipeline import ImagePipeline
from tests.service.conftest import RGB_SPEC, encode, pattern

IMAGES = [
    encode(pattern((64, 48), seed=1), "JPEG"),
    encode(pattern((30, 70), seed=2), "PNG"),
    encode(pattern((40, 40), seed=3), "WEBP", lossless=True),
]


def test_batch_buffer_rows_equal_single_image_preprocessing(tmp_path):
    pipeline = ImagePipeline(threads=2, max_pixels=10_000_000)
    prepared = asyncio.run(pipeline.prepare(IMAGES, RGB_SPEC))
    pipeline.close()
    assert prepared.array.shape == (3, 3, 32, 32)
    assert prepared.array.dtype == np.float32 and prepared.array.flags.c_contiguous
    assert prepared.decode_s > 0 and prepared.preprocess_s > 0
    for row, data in zip(prepared.array, IMAGES, strict=True):
        path = tmp_path / "img"
        path.write_bytes(data)
        np.testing.assert_array_equal(row, load_and_preprocess(str(path), RGB_SPEC))


def test_errors_name_the_image_in_a_batch():
    pipeline = ImagePipeline(threads=2, max_pixels=10_000_000)
    with pytest.raises(APIError) as info:
        asyncio.run(pipeline.prepare([IMAGES[0], b"not an image"], RGB_SPEC))
    pipeline.close()
    assert info.value.code == "invalid_image"
    assert info.value.message.startswith("image 2 of 2:")


def test_prepare_and_submit_goes_through_the_batcher():
    async def scenario() -> None:
        pipeline = ImagePipeline(threads=2, max_pixels=10_000_000)
        batcher = DynamicBatcher(lambda x: [x.sum(axis=(1, 2, 3))], name="sum")
        batcher.start(asyncio.get_running_loop())
        for images in ([IMAGES[0]], IMAGES):
            prepared, result = await pipeline.prepare_and_submit(images, RGB_SPEC, batcher)
            np.testing.assert_allclose(result.outputs[0], prepared.array.sum(axis=(1, 2, 3)))
        with pytest.raises(APIError) as info:
            await pipeline.prepare_and_submit([b""], RGB_SPEC, batcher)
        assert info.value.code == "invalid_image"
        batcher.stop(5)
        pipeline.close()

    asyncio.run(scenario())

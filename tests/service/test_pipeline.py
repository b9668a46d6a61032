from __future__ import annotations

import asyncio

import numpy as np
import pytest

from model.decoding import load_and_preprocess
from service.inference.batching import DynamicBatcher
from service.inference.pipeline import ImagePipeline
from service.plumbing.errors import APIError
from tests.helpers.images import RGB_SPEC, encode, pattern

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


def test_a_small_image_decodes_on_the_event_loop_a_larger_one_on_the_pool(tmp_path):
    small = encode(pattern((48, 40), seed=4), "JPEG")
    large = encode(pattern((120, 100), seed=5), "PNG")

    async def scenario() -> None:
        pipeline = ImagePipeline(threads=2, max_pixels=10_000_000, inline_max_pixels=48 * 40)
        batcher = DynamicBatcher(lambda x: [x], name="identity")
        batcher.start(asyncio.get_running_loop())
        for data in (small, large):  # both paths give the training tensor
            prepared, result = await pipeline.prepare_and_submit([data], RGB_SPEC, batcher)
            path = tmp_path / "img"
            path.write_bytes(data)
            expected = load_and_preprocess(str(path), RGB_SPEC)
            np.testing.assert_array_equal(prepared.array[0], expected)
            np.testing.assert_array_equal(result.outputs[0][0], expected)
            assert prepared.decode_s > 0 and prepared.preprocess_s > 0
        pipeline.close()  # no decode thread from here on: only inline decoding works
        prepared, _ = await pipeline.prepare_and_submit([small], RGB_SPEC, batcher)
        assert prepared.array.shape == (1, 3, 32, 32)
        with pytest.raises(RuntimeError, match="shutdown"):
            await pipeline.prepare_and_submit([large], RGB_SPEC, batcher)
        batcher.stop(5)

    asyncio.run(scenario())


def test_both_paths_refuse_a_broken_image_the_same_way():
    jpeg = encode(pattern((48, 40), seed=6), "JPEG")

    async def refusals(inline_max_pixels: int) -> list[tuple[str, str]]:
        pipeline = ImagePipeline(2, 10_000_000, inline_max_pixels)
        batcher = DynamicBatcher(lambda x: [x], name="identity")
        batcher.start(asyncio.get_running_loop())
        found = []
        for data in (jpeg[:-100], jpeg[:20], b"not an image"):
            with pytest.raises(APIError) as info:
                await pipeline.prepare_and_submit([data], RGB_SPEC, batcher)
            found.append((info.value.code, info.value.message))
        batcher.stop(5)
        pipeline.close()
        return found

    on_the_pool, on_the_loop = (asyncio.run(refusals(pixels)) for pixels in (0, 10_000))
    assert on_the_loop == on_the_pool
    assert {code for code, _ in on_the_loop} == {"invalid_image"}
    assert "truncated" in on_the_loop[0][1]

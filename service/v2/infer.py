"""``POST /v2/models/{name}[/versions/{version}]/infer``: one request, start to finish.

Read the body (bounded, like every upload), parse and check it with the codec, decode
encoded images on the shared decode pool, submit the batch to the model's dynamic batcher
(the same queue the image API uses, so both protocols batch together), and encode the
response as the request asked. Timings (ms) go into the response ``parameters`` and the
``Server-Timing`` header, and into the same Prometheus metrics as ``/v1`` predictions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from functools import partial

from fastapi import Request
from starlette.responses import Response

from service.errors import APIError
from service.repository import ServedModel
from service.routers.predict import server_timing
from service.uploads import read_body
from service.v2.codec import decode_request
from service.v2.encoding import choose_response_coding, encode_content
from service.v2.errors import V2Error
from service.v2.request import HEADER_LENGTH_HEADER
from service.v2.response import JSON_CONTENT_TYPE, encode_infer_response, error_body
from service.v2.signature import EncodedImages, ModelSignature

OFFLOAD_BYTES = 64 * 1024


def v2_error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        error_body(message),
        status_code=status,
        headers=dict(headers or {}),
        media_type=JSON_CONTENT_TYPE,
    )


async def infer(request: Request, model: ServedModel) -> Response:
    started = time.perf_counter()
    state = request.app.state
    settings = state.settings
    status, timings_s, images = 500, None, 0
    try:
        body = await read_body(request, settings.max_upload_bytes, settings.body_timeout_s)
        parse_started = time.perf_counter()
        decode = partial(
            decode_request,
            body,
            header_length=request.headers.get(HEADER_LENGTH_HEADER),
            content_encoding=request.headers.get("content-encoding"),
            signature=ModelSignature.from_card(model.card),
            max_bytes=settings.max_upload_bytes,
            max_batch=settings.max_images_per_request,
        )
        # Inflating a body or converting megabytes of JSON numbers takes milliseconds to
        # seconds: that runs off the event loop. A small plain body is cheaper parsed here.
        if len(body) > OFFLOAD_BYTES or request.headers.get("content-encoding"):
            decoded = await asyncio.to_thread(decode)
        else:
            decoded = decode()
        infer_request, model_input, plans = decoded
        decode_s = time.perf_counter() - parse_started
        preprocess_s = 0.0
        if isinstance(model_input, EncodedImages):
            prepared = await state.pipeline.prepare(model_input.images, model.card.preprocessing)
            batch = prepared.array
            decode_s += prepared.decode_s
            preprocess_s = prepared.preprocess_s
        else:
            batch = model_input.array
        result = await model.batcher.submit(batch)
        probabilities = result.outputs[model.output_names.index(model.card.output_name)]
        timings_s = {
            "decode": decode_s,
            "preprocess": preprocess_s,
            "queue": result.queue_s,
            "inference": result.inference_s,
            "total": time.perf_counter() - started,
        }
        timings_ms = {phase: seconds * 1000.0 for phase, seconds in timings_s.items()}
        encoded = encode_infer_response(
            model_name=model.name,
            model_version=str(model.version),
            probabilities=probabilities,
            plans=plans,
            labels=model.card.labels,
            request_id=infer_request.id,
            parameters={
                **{f"{phase}_ms": value for phase, value in timings_ms.items()},
                "batch_size": result.batch_size,
            },
        )
        content, coding = encode_content(
            encoded.body, choose_response_coding(request.headers.get("accept-encoding"))
        )
        headers = {**encoded.headers, "Server-Timing": server_timing(timings_ms)}
        if coding is not None:
            headers["Content-Encoding"] = coding
        model.latency.add(timings_s["total"])
        status, images = 200, int(batch.shape[0])
        return Response(content, headers=headers)
    except V2Error as exc:
        status = exc.status
        return v2_error_response(exc.status, exc.message, exc.headers)
    except APIError as exc:  # queue full, undecodable image, body too large or too slow
        status = exc.status_code
        raise
    finally:
        state.metrics.observe_prediction(model.name, model.version, status, timings_s, images)

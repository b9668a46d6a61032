"""``POST /v2/models/{name}[/versions/{version}]/infer``: one request, start to finish.

The V2 adapter of the shared inference path (``service.inference.path``): it reads the body
(bounded, like every upload), parses and checks it with the codec, and encodes the response
as the request asked. Admission against the queue bound, decoding of encoded images,
batching (the same queue the image API uses, so both protocols batch together) and the
Prometheus metrics are the shared path's. Timings (ms) go into the response ``parameters``
and the ``Server-Timing`` header.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

import numpy as np
from fastapi import Request
from starlette.responses import Response

from service.app.state import ServiceState
from service.inference.path import InferenceResult
from service.inference.served_model import ServedModel
from service.protocols.v1.uploads import read_body
from service.protocols.v2.codec import decode_request
from service.protocols.v2.encoding import choose_response_coding, encode_content
from service.protocols.v2.request import HEADER_LENGTH_HEADER
from service.protocols.v2.response import OutputPlan, encode_infer_response
from service.protocols.v2.signature import (
    IN_DISTRIBUTION_OUTPUT,
    OOD_SCORE_OUTPUT,
    ModelSignature,
)

OFFLOAD_BYTES = 64 * 1024


async def infer(request: Request, state: ServiceState, model: ServedModel) -> Response:
    """The V2 adapter: a V2 body in, a V2 response out, through the shared inference path."""
    settings = state.settings
    async with state.ready_inference().request(model) as call:
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
            infer_request, model_input, plans = await asyncio.to_thread(decode)
        else:
            infer_request, model_input, plans = decode()
        result = await call.run(model_input, parse_s=time.perf_counter() - parse_started)
        return _encode(request, result, infer_request.id, plans)


def _ood_outputs(result: InferenceResult) -> dict[str, np.ndarray] | None:
    if result.ood is None:
        return None
    scores, inside = result.ood
    return {OOD_SCORE_OUTPUT: scores.astype(np.float32), IN_DISTRIBUTION_OUTPUT: inside}


def _encode(
    request: Request, result: InferenceResult, request_id: str | None, plans: tuple[OutputPlan, ...]
) -> Response:
    model = result.model
    timings_ms = result.timings_ms
    encoded = encode_infer_response(
        model_name=model.name,
        model_version=str(model.version),
        probabilities=result.probabilities,
        plans=plans,
        labels=model.card.labels,
        request_id=request_id,
        parameters={
            **{f"{phase}_ms": value for phase, value in timings_ms.items()},
            "batch_size": result.batch_size,
        },
        per_image=_ood_outputs(result),
    )
    content, coding = encode_content(
        encoded.body, choose_response_coding(request.headers.get("accept-encoding"))
    )
    headers = {**encoded.headers, "Server-Timing": result.server_timing}
    if coding is not None:
        headers["Content-Encoding"] = coding
    return Response(content, headers=headers)

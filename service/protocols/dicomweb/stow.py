"""``POST /dicomweb/studies``: receive STOW-RS pushes (a router, a modality), classify them
and store each study's Structured Report in the configured PACS.

The body is ``multipart/related; type="application/dicom"``, bounded like ``/predict``'s
(``max_upload_bytes``, then at most ``dicomweb_max_instances`` parts), split by
dicomweb-client's multipart/related decoder. A request that is not STOW-RS at all gets
the API's JSON 4xx; each instance that cannot be classified is listed in the standard
answer's FailedSOPSequence, with a Failure Reason and, in Error Comment, this service's
reason and message. With no PACS configured the instances are classified, nothing is
stored, and a ``Warning`` header says so. ``?model=`` picks the model (default: the
default model).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import defaultdict
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pydicom
from dicomweb_client.api import DICOMwebClient
from fastapi import APIRouter, Depends, Query, Request
from pydicom.dataset import Dataset
from starlette.responses import Response

from service.app.auth import require_api_key
from service.app.deps import State
from service.plumbing.errors import APIError, JSONBytesResponse
from service.protocols.dicomweb.client import Pacs
from service.protocols.dicomweb.instances import (
    PIXEL_DATA_KEYWORDS,
    InstanceRef,
    Skipped,
    screen,
)
from service.protocols.dicomweb.pull import FRAME
from service.protocols.dicomweb.study import Source, StudyResults, classify, write_report
from service.protocols.v1.image_api import TOP_K
from service.protocols.v1.schemas import error_responses
from service.protocols.v1.uploads import header_params, media_type, read_body

log = logging.getLogger(__name__)

router = APIRouter(tags=["dicomweb"], dependencies=[Depends(require_api_key)])

STOW_TYPE = 'multipart/related; type="application/dicom"'
DICOM_JSON = "application/dicom+json"
# Failure Reasons of PS3.18 / PS3.7 for the instances this service cannot classify.
FAILURE_REASONS: dict[str, int] = {
    "structured_report": 0x0122,  # Referenced SOP Class not supported
    "waveform": 0x0122,
    "no_pixel_data": 0x0122,
    "unsupported_media_type": 0xC122,  # Referenced Transfer Syntax not supported
    "image_too_large": 0xA700,  # Out of resources
    "payload_too_large": 0xA700,
    "invalid_image": 0xC000,  # Cannot understand
    "not_dicom": 0xC000,
}
PROCESSING_FAILURE = 0x0110
MODEL = Query(None, description="The model to classify with; unset: the default model.")


class _ReceivedBody:
    """The request body in the shape dicomweb-client's multipart decoder reads a response
    in (headers, content, a context manager)."""

    def __init__(self, content_type: str, content: bytes) -> None:
        self.headers = {"content-type": content_type}
        self.content = content

    def __enter__(self) -> _ReceivedBody:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


# The decoder is a method that needs no connection: a client never connected holds it.
_DECODER = DICOMwebClient.__new__(DICOMwebClient)


def stow_parts(body: bytes, content_type: str, max_parts: int) -> Iterator[bytes]:
    """The parts of a STOW-RS body, after checking that it is one."""
    kind = media_type(content_type)
    params = header_params(content_type)
    declared = params.get("type", "application/dicom").strip().lower()
    if kind != "multipart/related" or declared != "application/dicom":
        raise APIError(
            "unsupported_media_type",
            f"Content-Type {kind or '(none)'!r} is not STOW-RS; send {STOW_TYPE}; boundary=...",
            {"content_type": kind or None},
        )
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise APIError("invalid_multipart", "the multipart Content-Type has no valid boundary")
    if b"--" + boundary.encode("latin-1") not in body:
        raise APIError(
            "invalid_multipart", "the body does not contain the boundary named in Content-Type"
        )
    count = 0
    try:
        for part in _DECODER._decode_multipart_message(
            _ReceivedBody(content_type, body),  # type: ignore[arg-type]
            stream=False,
        ):
            count += 1
            if count > max_parts:
                raise APIError(
                    "payload_too_large",
                    f"more than {max_parts} instances in one STOW-RS request; the limit is "
                    f"{max_parts} (RECTIFIER_DICOMWEB_MAX_INSTANCES)",
                    {"max_instances": max_parts},
                )
            yield part
    except ValueError:
        raise APIError(
            "invalid_multipart", "a multipart part has no header/body separator"
        ) from None


def _header(data: bytes) -> Dataset | None:
    """The part's data set with its pixel data emptied (present, so screening sees it;
    empty, so the report's evidence holds no pixels); None when it is not DICOM."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except Exception:  # pydicom's text may quote the file: none is echoed
        return None
    for keyword in PIXEL_DATA_KEYWORDS:
        if keyword in dataset:
            dataset[keyword].value = b""
    return dataset


def _not_dicom(index: int) -> Skipped:
    unknown = InstanceRef("", "", "", "", 1)
    return Skipped(unknown, "not_dicom", f"part {index + 1} is not a DICOM Part 10 file")


def _failed_item(skip: Skipped) -> dict[str, Any]:
    reason = FAILURE_REASONS.get(skip.reason, PROCESSING_FAILURE)
    return {
        "00081150": {"vr": "UI", "Value": [skip.instance.sop_class_uid]}
        if skip.instance.sop_class_uid
        else {"vr": "UI"},
        "00081155": {"vr": "UI", "Value": [skip.instance.sop_uid]}
        if skip.instance.sop_uid
        else {"vr": "UI"},
        "00081197": {"vr": "US", "Value": [reason]},
        "00000902": {"vr": "LO", "Value": [f"{skip.reason}: {skip.message}"]},
    }


def _referenced_item(ref: InstanceRef) -> dict[str, Any]:
    return {
        "00081150": {"vr": "UI", "Value": [ref.sop_class_uid]},
        "00081155": {"vr": "UI", "Value": [ref.sop_uid]},
    }


@router.post(
    "/dicomweb/studies",
    summary="STOW-RS: receive instances, classify them and store their reports in the PACS",
    response_model=None,
    response_class=JSONBytesResponse,
    responses={
        **{
            status: {
                "description": meaning,
                "content": {DICOM_JSON: {"schema": {"type": "object"}}},
            }
            for status, meaning in (
                (200, "every instance classified"),
                (202, "some instances classified, the others in FailedSOPSequence"),
                (409, "no instance classified: all in FailedSOPSequence"),
            )
        },
        **error_responses(400, 401, 404, 408, 413, 415, 422, 503),
    },
    # The body (multipart/related; type="application/dicom") is read by the route itself;
    # OpenAPI has no schema for multipart/related that fuzzers or clients could use.
    description=f"Body: {STOW_TYPE}; boundary=..., one DICOM Part 10 file per part.",
)
async def store_instances(
    request: Request,
    state: State,
    model: str | None = MODEL,
    top_k: int | None = TOP_K,
    frame: int | None = FRAME,
) -> Response:
    settings = state.settings
    repository = state.ready_repository()
    served = repository.get(model) if model is not None else repository.default()
    inference = state.ready_inference()
    served.batcher.check_capacity()
    body = await read_body(request, settings.max_upload_bytes, settings.body_timeout_s)
    content_type = request.headers.get("content-type", "")
    parts = list(stow_parts(body, content_type, settings.dicomweb_max_instances))
    del body
    if not parts:
        raise APIError("missing_image", "the STOW-RS body holds no instance")
    headers = await asyncio.to_thread(lambda: [_header(part) for part in parts])
    top = top_k or settings.default_top_k
    by_study: dict[str, StudyResults] = {}
    failed: list[Skipped] = []
    sources: dict[str, list[Source]] = defaultdict(list)
    for index, (data, header) in enumerate(zip(parts, headers, strict=True)):
        if header is None:
            failed.append(_not_dicom(index))
            continue
        screened = screen(header, served.card, frame, settings.max_image_pixels)
        if isinstance(screened, Skipped):
            failed.append(screened)
            continue
        study = screened.study_uid
        by_study.setdefault(study, StudyResults(served, top, frame))
        sources[study].append(Source(screened, header, data))
    parts.clear()
    pacs = Pacs(settings) if settings.dicomweb_url is not None else None
    warnings: list[str] = []
    try:
        for study, results in by_study.items():
            chunk = settings.max_images_per_request
            items = sources.pop(study)
            for start in range(0, len(items), chunk):
                await classify(inference, results, items[start : start + chunk])
            failed.extend(results.skipped)
            try:
                report = await write_report(results, pacs, store=True)
            except APIError as exc:
                warnings.append(f"the report of study {study} was not stored: {exc.message}")
                continue
            if not report["stored"] and pacs is None:
                warnings.append("no PACS is configured: classified, no report stored")
    finally:
        if pacs is not None:
            pacs.close()
    classified = [src.ref for results in by_study.values() for src, _ in results.classified]
    answer: dict[str, Any] = {}
    if classified:
        answer["00081199"] = {"vr": "SQ", "Value": [_referenced_item(r) for r in classified]}
    if failed:
        answer["00081198"] = {"vr": "SQ", "Value": [_failed_item(s) for s in failed]}
    status = 200 if not failed else (202 if classified else 409)
    response_headers = {}
    if warnings:
        response_headers["Warning"] = ", ".join(
            f'299 rectifier "{text}"' for text in dict.fromkeys(warnings)
        )
    log.info(
        "dicomweb stow: model %s version %s, %d classified, %d failed, %d studies",
        served.name,
        served.version,
        len(classified),
        len(failed),
        len(by_study),
    )
    return JSONBytesResponse(
        answer, status_code=status, headers=response_headers, media_type=DICOM_JSON
    )

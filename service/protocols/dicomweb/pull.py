"""``POST /v1/models/{name}[/versions/{version}]/dicomweb/studies/{study_uid}`` (and
``POST /v1/dicomweb/studies/{study_uid}`` for the default model): pull a study from the
PACS, classify every image instance and store one Structured Report back.

QIDO-RS counts the study's instances (refused past ``dicomweb_max_instances`` before
anything is fetched), WADO-RS reads their metadata (screened: ``instances.screen``) and
then the instances, on ``dicomweb_fetch_threads`` threads, a chunk of
``max_images_per_request`` ahead of the one being classified, so fetching overlaps with
decoding and inference and at most two chunks are held in memory. The PACS's address is
the settings' alone; a request names a study, never a server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Path, Query
from starlette.responses import Response

from model.card import MAX_FRAME
from service.app.auth import require_api_key
from service.app.deps import State
from service.app.state import ServiceState
from service.inference.path import InferencePath
from service.inference.served_model import ServedModel
from service.plumbing.errors import APIError, JSONBytesResponse
from service.plumbing.settings import Settings
from service.protocols.dicomweb.client import Pacs
from service.protocols.dicomweb.instances import InstanceRef, Skipped, screen
from service.protocols.dicomweb.study import Source, StudyResults, classify, write_report
from service.protocols.v1.image_api import TOP_K, Resolve
from service.protocols.v1.schemas import error_responses

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["dicomweb"], dependencies=[Depends(require_api_key)])

UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
STUDY_UID = Path(max_length=64, pattern=UID_PATTERN, description="The Study Instance UID.")
FRAME = Query(
    None,
    ge=0,
    le=MAX_FRAME,
    description="For multi-frame instances: the frame to classify, from 0. Without it a "
    "multi-frame instance is skipped (multiple_frames) unless the model card names a frame.",
)
STORE = Query(True, description="Store the report in the PACS (false: classify only).")
PREFER = Header(
    None,
    description="respond-async: answer 202 at once and pull afterwards (the PACS's own "
    "auto-routing hook sends it).",
)
_DOC: dict[str, Any] = {
    "response_model": None,
    "response_class": JSONBytesResponse,
    "responses": {
        202: {
            "description": "accepted (Prefer: respond-async): the pull runs after the answer",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **error_responses(401, 404, 409, 413, 422, 500, 502, 503, 504),
    },
}


@dataclass(frozen=True)
class PullRequest:
    study_uid: str
    top_k: int | None
    frame: int | None
    store: bool


async def pull_study(
    state: ServiceState,
    resolve: Resolve,
    pull: PullRequest,
    background: BackgroundTasks,
    prefer: str | None,
) -> Response:
    """Answer the pull, or with ``Prefer: respond-async`` accept it (202) and pull after
    answering: the PACS's own hook (Orthanc's Lua, which blocks Orthanc's HTTP server while
    it waits for an answer) must not wait for a pull from that very server."""
    model = resolve(state.ready_repository())
    inference = state.ready_inference()
    model.batcher.check_capacity()  # refuse at once when the model is full, as /predict does
    Pacs.check_configured(state.settings)
    if prefer is not None and "respond-async" in prefer.lower():
        background.add_task(_pull_in_background, state, inference, model, pull)
        accepted = {
            "status": "accepted",
            "model": model.name,
            "version": model.version,
            "study_uid": pull.study_uid,
        }
        return JSONBytesResponse(
            accepted, status_code=202, headers={"Preference-Applied": "respond-async"}
        )
    return JSONBytesResponse(await run_pull(state.settings, inference, model, pull))


async def _pull_in_background(
    state: ServiceState, inference: InferencePath, model: ServedModel, pull: PullRequest
) -> None:
    try:
        await run_pull(state.settings, inference, model, pull)
    except APIError as exc:  # messages name no patient data: they may be logged
        log.warning(
            "dicomweb pull of study %s failed: %s (%s)", pull.study_uid, exc.message, exc.code
        )
    except Exception as exc:  # the text of a library's error is not logged: it may quote data
        log.error("dicomweb pull of study %s failed: %s", pull.study_uid, type(exc).__name__)


async def run_pull(
    settings: Settings, inference: InferencePath, model: ServedModel, pull: PullRequest
) -> dict[str, Any]:
    """Pull, classify and report one study; the JSON answer."""
    started = time.perf_counter()
    results = StudyResults(model, pull.top_k or settings.default_top_k, pull.frame)
    study_uid = pull.study_uid
    pacs = Pacs(settings)
    try:
        sources = await _screened_sources(pacs, results, study_uid)
        await _fetch_and_classify(pacs, inference, results, study_uid, sources)
        try:
            report = await write_report(results, pacs, pull.store)
        except APIError as exc:
            if exc.code != "pacs_store_failed":
                raise
            # The predictions stand: answer them with the error, nothing was written.
            results.add_time("total", time.perf_counter() - started)
            report = {"stored": False, "reason": exc.message}
            exc.detail = {**(exc.detail or {}), **results.answer(study_uid, report)}
            raise
    finally:
        pacs.close()
    results.add_time("total", time.perf_counter() - started)
    log.info(
        "dicomweb pull: model %s version %s, %d classified, %d skipped, report stored: %s",
        model.name,
        model.version,
        len(results.classified),
        len(results.skipped),
        report["stored"],
    )
    return results.answer(study_uid, report)


async def _screened_sources(pacs: Pacs, results: StudyResults, study_uid: str) -> list[Source]:
    """The study's instances to classify (QIDO-RS count, WADO-RS metadata, screened)."""
    settings = pacs.settings
    started = time.perf_counter()
    count = await asyncio.to_thread(pacs.study_instance_count, study_uid)
    _check_count(count, settings.dicomweb_max_instances)
    headers = await asyncio.to_thread(pacs.study_metadata, study_uid)
    _check_count(len(headers), settings.dicomweb_max_instances)
    results.add_time("search", time.perf_counter() - started)
    sources = []
    for header in headers:
        screened = screen(header, results.model.card, results.frame, settings.max_image_pixels)
        if isinstance(screened, Skipped):
            results.skipped.append(screened)
        else:
            sources.append(Source(screened, header))
    return sources


def _check_count(count: int, limit: int) -> None:
    if count > limit:
        raise APIError(
            "study_too_large",
            f"the study has {count} instances; the limit is {limit} "
            "(RECTIFIER_DICOMWEB_MAX_INSTANCES)",
            {"instances": count, "max_instances": limit},
        )


async def _fetch_and_classify(
    pacs: Pacs,
    inference: InferencePath,
    results: StudyResults,
    study_uid: str,
    sources: Sequence[Source],
) -> None:
    """Fetch chunk i+1 while chunk i is decoded and classified."""
    size = pacs.settings.max_images_per_request
    chunks = [list(sources[i : i + size]) for i in range(0, len(sources), size)]
    if not chunks:
        return
    fetch_started = time.perf_counter()
    pending = _submit(pacs, study_uid, chunks[0])
    for index, _chunk in enumerate(chunks):
        fetched = await _gather(results, pending)
        if index + 1 < len(chunks):
            pending = _submit(pacs, study_uid, chunks[index + 1])
        else:
            results.add_time("fetch", time.perf_counter() - fetch_started)
        await classify(inference, results, fetched)


def _submit(
    pacs: Pacs, study_uid: str, chunk: Sequence[Source]
) -> list[tuple[Source, Future[bytes]]]:
    def fetch(ref: InstanceRef) -> Callable[[], bytes]:
        return lambda: pacs.instance_bytes(study_uid, ref.series_uid, ref.sop_uid)

    return [(source, pacs.submit(fetch(source.ref))) for source in chunk]


async def _gather(
    results: StudyResults, pending: Sequence[tuple[Source, Future[bytes]]]
) -> list[Source]:
    fetched = []
    for source, future in pending:
        try:
            data = await asyncio.wrap_future(future)
        except APIError as exc:
            if exc.code != "study_not_found":  # the PACS failing ends the request
                raise
            results.skipped.append(Skipped(source.ref, "not_found", "the PACS no longer has it"))
            continue
        fetched.append(Source(source.ref, source.header, data))
    return fetched


@router.post(
    "/models/{name}/dicomweb/studies/{study_uid}",
    summary="Pull a study from the PACS, classify it with a model's newest version and "
    "store a Structured Report back",
    **_DOC,
)
async def pull_with_model(
    state: State,
    background: BackgroundTasks,
    name: str,
    study_uid: str = STUDY_UID,
    top_k: int | None = TOP_K,
    frame: int | None = FRAME,
    store: bool = STORE,
    prefer: str | None = PREFER,
) -> Response:
    pull = PullRequest(study_uid, top_k, frame, store)
    return await pull_study(state, lambda r: r.get(name), pull, background, prefer)


@router.post(
    "/models/{name}/versions/{version}/dicomweb/studies/{study_uid}",
    summary="Pull a study from the PACS, classify it with one version of a model and store "
    "a Structured Report back",
    **_DOC,
)
async def pull_with_version(
    state: State,
    background: BackgroundTasks,
    name: str,
    version: int = Path(ge=1),
    study_uid: str = STUDY_UID,
    top_k: int | None = TOP_K,
    frame: int | None = FRAME,
    store: bool = STORE,
    prefer: str | None = PREFER,
) -> Response:
    pull = PullRequest(study_uid, top_k, frame, store)
    return await pull_study(state, lambda r: r.get(name, version), pull, background, prefer)


@router.post(
    "/dicomweb/studies/{study_uid}",
    summary="Pull a study from the PACS, classify it with the default model and store a "
    "Structured Report back",
    **_DOC,
)
async def pull_with_default(
    state: State,
    background: BackgroundTasks,
    study_uid: str = STUDY_UID,
    top_k: int | None = TOP_K,
    frame: int | None = FRAME,
    store: bool = STORE,
    prefer: str | None = PREFER,
) -> Response:
    pull = PullRequest(study_uid, top_k, frame, store)
    return await pull_study(state, lambda r: r.default(), pull, background, prefer)
